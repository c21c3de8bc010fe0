"""Re-authentication for MFA changes (issue 11, item 3).

Turning TOTP off and replacing it need the token's ``auth_time`` within
AUTHSVC_REAUTH_MAX_AGE seconds, or ``current_password`` in the body; otherwise 403
``reauthentication_required``. After the change every session ends and the user is emailed
a notice. Cognito keeps ``auth_time`` across refresh, moto stamps every token with "now": a
stale sign-in is made here by lowering the setting to 0, not by waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, Tokens, assert_problem, sign_in, signed_in_user
from tests.mfa.support import TOTP, VERIFY, current_code, enable_totp


@pytest.fixture(scope="module")
def strict(cognito: Any, database_url: str) -> Iterator[TestClient]:
    """An app where no sign-in is recent enough: only current_password will do."""
    app = create_app(make_settings(cognito, database_url, reauth_max_age=0))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def strict_outbox(strict: TestClient) -> DevOutbox:
    box: DevOutbox = strict.app.state.authsvc.outbox  # type: ignore[attr-defined]
    return box


@pytest.fixture
def mfa_user(strict: TestClient, strict_outbox: DevOutbox) -> tuple[str, Tokens]:
    email, tokens = signed_in_user(strict, strict_outbox)
    enable_totp(strict, tokens)  # turning it on the first time needs no re-authentication
    return email, tokens


def mfa_on(client: TestClient, email: str) -> bool:
    body = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD}).json()
    return bool(body.get("kind") == "challenge")


def wait_notice(outbox: DevOutbox, email: str, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        messages = outbox.list(to=email, kind="security_notice")
        if messages:
            return messages[0]
        assert time.monotonic() < deadline, f"no security notice for {email}"
        time.sleep(0.05)


class TestTurningOff:
    def test_a_stale_sign_in_alone_is_refused(self, strict, mfa_user):
        email, tokens = mfa_user
        response = strict.delete(TOTP, headers=tokens.bearer)
        assert_problem(response, 403, "reauthentication_required")
        assert mfa_on(strict, email)

    def test_a_wrong_current_password_is_refused(self, strict, mfa_user):
        email, tokens = mfa_user
        response = strict.request(
            "DELETE", TOTP, json={"current_password": "Wr0ng-Passw0rd!"}, headers=tokens.bearer
        )
        assert_problem(response, 400, "invalid_current_password")
        assert mfa_on(strict, email)

    def test_current_password_turns_it_off_ends_sessions_and_notifies(
        self, strict, strict_outbox, mfa_user
    ):
        email, tokens = mfa_user
        response = strict.request(
            "DELETE", TOTP, json={"current_password": PASSWORD}, headers=tokens.bearer
        )
        assert response.status_code == 204, response.text
        assert not mfa_on(strict, email)
        assert strict.get("/v1/auth/session", headers=tokens.bearer).status_code == 401
        refresh = strict.post("/v1/auth/refresh", json={"refresh_token": tokens.refresh_token})
        assert refresh.status_code == 401, refresh.text
        notice = wait_notice(strict_outbox, email)
        assert "turned off" in notice.subject
        assert notice.code is None and notice.link is None

    def test_a_recent_sign_in_is_enough(self, client, outbox):
        """The default (600 s): a token from a sign-in just now needs no password; every
        session, the other ones included, ends."""
        email, tokens = signed_in_user(client, outbox)
        other = sign_in(client, email)
        enable_totp(client, tokens)
        response = client.delete(TOTP, headers=tokens.bearer)
        assert response.status_code == 204, response.text
        assert client.get("/v1/auth/session", headers=other.bearer).status_code == 401
        wait_notice(outbox, email)


class TestReplacing:
    def test_new_secret_needs_reauthentication_once_totp_is_on(self, strict, mfa_user):
        _email, tokens = mfa_user
        assert_problem(strict.post(TOTP, headers=tokens.bearer), 403, "reauthentication_required")

    def test_verify_needs_reauthentication_once_totp_is_on(self, strict, mfa_user):
        email, tokens = mfa_user
        response = strict.post(VERIFY, json={"code": current_code()}, headers=tokens.bearer)
        assert_problem(response, 403, "reauthentication_required")
        assert mfa_on(strict, email)

    def test_replace_with_current_password_ends_sessions_and_notifies(
        self, strict, strict_outbox, mfa_user
    ):
        email, tokens = mfa_user
        body = {"current_password": PASSWORD}
        setup = strict.post(TOTP, json=body, headers=tokens.bearer)
        assert setup.status_code == 200, setup.text
        secret = setup.json()["secret_code"]
        verify = strict.post(
            VERIFY, json={"code": current_code(secret), **body}, headers=tokens.bearer
        )
        assert verify.status_code == 204, verify.text
        assert mfa_on(strict, email)
        assert strict.get("/v1/auth/session", headers=tokens.bearer).status_code == 401
        assert "replaced" in wait_notice(strict_outbox, email).subject

    def test_first_enrolment_needs_none(self, strict, strict_outbox):
        email, tokens = signed_in_user(strict, strict_outbox)
        enable_totp(strict, tokens)
        assert mfa_on(strict, email)
        assert strict.get("/v1/auth/session", headers=tokens.bearer).status_code == 200
