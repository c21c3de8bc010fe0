"""Cognito faults, seen from a real `authsvc serve` (issue: Reliability, 1).

The app reaches moto through ``CognitoProxy`` (AUTHSVC_COGNITO_ENDPOINT_URL) and reads the
real moto JWKS directly (AUTHSVC_COGNITO_JWKS_URL), with one-second timeouts and two attempts
per call. For every kind of fault — latency beyond the read timeout, nothing listening,
connection reset before or partway through the answer, and HTTP errors from a fake upstream
(throttling, limit exceeded, internal error) — a call answers 503 `upstream_unavailable`
with Retry-After, never 500 and never `invalid_credentials` (a correct and a wrong password
read the same), is sent at most twice, and works again once the fault clears, without a
restart.

Non-idempotent calls are sent once. When the answer to one that moto applied is lost, the
app looks (the new password signs in; the invited user exists) and answers success without
sending it again; when the request never arrived, the look finds nothing and it is sent again.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers import PASSWORD, new_email
from tests.reliability.conftest import (
    INTERNAL_ERROR,
    LIMIT_EXCEEDED,
    MAX_ATTEMPTS,
    THROTTLED,
    CognitoProxy,
    Fault,
    SmtpInbox,
    assert_unavailable,
    bearer,
    reliability_env,
    sign_in,
    smtp_server,
)
from tests.security.support import direct_user, make_admin, start_serve, stop_serve

pytestmark = pytest.mark.slow

WRONG_PASSWORD = "Wr0ng-Secret-42x"
NEW_PASSWORD = "N3w-Passw0rd!x"


@dataclass
class FaultsApp:
    client: httpx.Client
    proxy: CognitoProxy
    cognito: Any
    inbox: SmtpInbox
    admin_token: str


@pytest.fixture(scope="module")
def app(
    cognito: Any,
    cognito_proxy: CognitoProxy,
    module_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FaultsApp]:
    inbox = SmtpInbox()
    with smtp_server(inbox) as smtp_port:
        env = reliability_env(
            cognito,
            module_database,
            cognito_proxy,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=str(smtp_port),
            smtp_starttls="false",
        )
        (instance,) = start_serve(["faults"], env, tmp_path_factory.mktemp("faults"))
        try:
            with httpx.Client(base_url=instance.base_url, timeout=30.0) as client:
                admin = sign_in(client, make_admin(cognito), PASSWORD)
                yield FaultsApp(client, cognito_proxy, cognito, inbox, admin["access_token"])
        finally:
            cognito_proxy.clear()
            stop_serve([instance])


@pytest.fixture
def user(app: FaultsApp) -> tuple[str, str]:
    """A confirmed user, and an access token it got through the app before any fault."""
    email = direct_user(app.cognito, tag="rel")
    return email, sign_in(app.client, email, PASSWORD)["access_token"]


def _calls(proxy: CognitoProxy, mark: int, operation: str, marker: str) -> int:
    """Requests for ``operation`` since ``mark`` whose body holds the JSON string ``marker``."""
    quoted = f'"{marker}"'.encode()
    return sum(1 for e in proxy.since(mark, operation) if quoted in e.body)


FAULTS = {
    "latency": Fault("latency", latency=1.5),  # more than the 1 s read timeout
    "refused": None,  # nothing listening
    "reset_before_answer": Fault("reset"),
    "reset_partway": Fault("reset_partway"),
    "throttled": Fault("error", error=THROTTLED),
    "limit_exceeded": Fault("error", error=LIMIT_EXCEEDED),
    "internal_error": Fault("error", error=INTERNAL_ERROR),
}


class TestFaults:
    @pytest.mark.parametrize("name", list(FAULTS))
    def test_fault_is_503_bounded_and_clears_without_restart(
        self, app: FaultsApp, user: tuple[str, str], name: str
    ) -> None:
        email, token = user
        fault = FAULTS[name]
        mark = app.proxy.mark()
        if fault is None:
            app.proxy.refuse()
        else:
            app.proxy.inject(fault)
        try:
            calls = {
                "right": lambda c: c.post(
                    "/v1/auth/sign-in", json={"email": email, "password": PASSWORD}
                ),
                "wrong": lambda c: c.post(
                    "/v1/auth/sign-in", json={"email": email, "password": WRONG_PASSWORD}
                ),
                "me": lambda c: c.get("/v1/me", headers=bearer(token)),
            }
            with ThreadPoolExecutor(len(calls)) as pool:
                futures = {k: pool.submit(call, app.client) for k, call in calls.items()}
                answers = {k: f.result() for k, f in futures.items()}
        finally:
            app.proxy.clear()

        for answer in answers.values():
            assert_unavailable(answer)  # never 500, never invalid_credentials
        sent = {
            "right": _calls(app.proxy, mark, "InitiateAuth", PASSWORD),
            "wrong": _calls(app.proxy, mark, "InitiateAuth", WRONG_PASSWORD),
            "me": _calls(app.proxy, mark, "GetUser", token),
        }
        for call, count in sent.items():
            assert count <= MAX_ATTEMPTS, (call, app.proxy.operations(mark))
            # Nothing reaches a closed port; every other fault is seen, then retried.
            assert count == (0 if fault is None else MAX_ATTEMPTS), (call, sent)

        # The fault is gone: the same running instance answers normally again.
        assert sign_in(app.client, email, PASSWORD)["kind"] == "tokens"
        wrong = app.client.post(
            "/v1/auth/sign-in", json={"email": email, "password": WRONG_PASSWORD}
        )
        assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"
        me = app.client.get("/v1/me", headers=bearer(token))
        assert me.status_code == 200 and me.json()["email"] == email

    def test_one_lost_answer_is_absorbed_by_the_retry(
        self, app: FaultsApp, user: tuple[str, str]
    ) -> None:
        email, _ = user
        mark = app.proxy.mark()
        with app.proxy.faulted(Fault("reset_partway", operation="InitiateAuth", times=1)):
            assert sign_in(app.client, email, PASSWORD)["kind"] == "tokens"
        assert [e.fault for e in app.proxy.since(mark, "InitiateAuth")] == ["reset_partway", None]

    def test_readiness_names_cognito_while_it_is_down(self, app: FaultsApp) -> None:
        app.proxy.refuse()
        try:
            response = app.client.get("/readyz")
        finally:
            app.proxy.clear()
        assert response.status_code == 503
        checks = {c["name"]: c["status"] for c in response.json()["checks"]}
        assert checks["cognito"] == "fail" and checks["database"] == "ok", checks
        # Each dependency is re-probed at most once per readiness_cache_seconds (5 s).
        deadline = time.monotonic() + 15
        while app.client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "/readyz did not recover"
            time.sleep(0.5)


class TestNonIdempotent:
    def _forgot(self, app: FaultsApp, email: str) -> None:
        response = app.client.post("/v1/auth/password/forgot", json={"email": email})
        assert response.status_code == 202, response.text

    def _reset(self, app: FaultsApp, email: str) -> httpx.Response:
        # Outside dev mode moto checks no code it did not prefix itself (REFERENCE.md).
        body = {"email": email, "code": "123456", "new_password": NEW_PASSWORD}
        return app.client.post("/v1/auth/password/reset", json=body)

    def _signs_in_with_new_password_only(self, app: FaultsApp, email: str) -> None:
        assert sign_in(app.client, email, NEW_PASSWORD)["kind"] == "tokens"
        old = app.client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert old.status_code == 401, old.text

    def test_reset_applied_but_answer_lost_is_checked_not_resent(
        self, app: FaultsApp, user: tuple[str, str]
    ) -> None:
        email, _ = user
        self._forgot(app, email)
        mark = app.proxy.mark()
        with app.proxy.faulted(Fault("reset", operation="ConfirmForgotPassword", times=1)):
            response = self._reset(app, email)
        assert response.status_code == 204, response.text
        log = app.proxy.since(mark)
        confirms = [e for e in log if e.operation == "ConfirmForgotPassword"]
        assert [e.fault for e in confirms] == ["reset"], [e.operation for e in log]
        # What the app did instead of sending it again: signed in with the new password.
        after = [e.operation for e in log[log.index(confirms[0]) + 1 :]]
        assert after[0] == "InitiateAuth", after
        assert NEW_PASSWORD.encode() in log[log.index(confirms[0]) + 1].body
        self._signs_in_with_new_password_only(app, email)

    def test_reset_lost_before_cognito_is_sent_again_after_a_look(
        self, app: FaultsApp, user: tuple[str, str]
    ) -> None:
        email, _ = user
        self._forgot(app, email)
        mark = app.proxy.mark()
        with app.proxy.faulted(Fault("drop", operation="ConfirmForgotPassword", times=1)):
            response = self._reset(app, email)
        assert response.status_code == 204, response.text
        ops = app.proxy.operations(mark)
        first = ops.index("ConfirmForgotPassword")
        assert ops[first : first + 3] == [
            "ConfirmForgotPassword",  # dropped: never reached moto
            "InitiateAuth",  # the look: the new password does not work yet
            "ConfirmForgotPassword",  # so it is sent again, once
        ], ops
        assert ops.count("ConfirmForgotPassword") == 2, ops
        self._signs_in_with_new_password_only(app, email)

    def test_invited_user_created_but_answer_lost_is_one_user(self, app: FaultsApp) -> None:
        email = new_email("relinv")
        created = app.client.post(
            "/v1/invitations",
            json={"email": email, "family_name": "Invited"},
            headers=bearer(app.admin_token),
        )
        assert created.status_code == 201, created.text
        app.inbox.wait_for(lambda ms: any(m["To"] == email for m in ms), timeout=15)
        mail = next(m for m in app.inbox.received() if m["To"] == email)
        found = re.search(r"#token=([A-Za-z0-9_-]+)", mail.get_payload(decode=True).decode())
        assert found, "no link in the invitation"

        mark = app.proxy.mark()
        with app.proxy.faulted(Fault("reset", operation="AdminCreateUser", times=1)):
            accepted = app.client.post(
                "/v1/invitations/accept", json={"token": found.group(1), "password": NEW_PASSWORD}
            )
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["access_token"]
        ops = app.proxy.operations(mark)
        assert ops.count("AdminCreateUser") == 1, ops
        assert ops[ops.index("AdminCreateUser") + 1] == "AdminGetUser", ops  # the look
        users = app.cognito.client.list_users(
            UserPoolId=app.cognito.pool.user_pool_id, Filter=f'email = "{email}"'
        )["Users"]
        assert len(users) == 1 and users[0]["UserStatus"] == "CONFIRMED", users
        assert sign_in(app.client, email, NEW_PASSWORD)["kind"] == "tokens"
