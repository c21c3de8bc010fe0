"""TOTP MFA against moto over HTTP: set-up, verification, the sign-in challenge, turning it
off (by the user and by an admin), and wrong codes counted by the rate limits.

moto checks codes only with MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP=true (conftest sets it),
against one fixed 60-bit secret, for the current 30 s step only. The dev gateway gives each
user a real 160-bit secret instead and checks codes against it (TestDevSecret), so every
code here is computed from the secret the API handed out.
"""

from __future__ import annotations

import base64
import re
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from cryptography.hazmat.primitives.hashes import SHA1
from cryptography.hazmat.primitives.twofactor.totp import TOTP as CryptographyTOTP
from fastapi.testclient import TestClient

from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import (
    PASSWORD,
    Tokens,
    assert_problem,
    confirmed_user,
    sign_in,
    signed_in_user,
)
from tests.mfa.support import (
    CHALLENGE,
    MOTO_SECRET,
    TOTP,
    VERIFY,
    current_code,
    enable_totp,
    mfa_answer,
    totp_at,
    wait_for_fresh_step,
    wrong_code,
)

SIGN_IN = "/v1/auth/sign-in"
ADMIN_USERS = "/v1/admin/users"


def me(client: TestClient, tokens: Tokens) -> dict[str, Any]:
    response = client.get("/v1/me", headers=tokens.bearer)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def sign_in_raw(client: TestClient, email: str) -> dict[str, Any]:
    response = client.post(SIGN_IN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def mfa_challenge(client: TestClient, email: str) -> str:
    """Sign in a user with MFA on; assert the challenge; return its session."""
    body = sign_in_raw(client, email)
    assert body["kind"] == "challenge", body
    assert body["challenge"] == "SOFTWARE_TOKEN_MFA"
    assert body["session"]
    assert "access_token" not in body and "refresh_token" not in body
    return str(body["session"])


@pytest.fixture(scope="module")
def admin(app_client: TestClient, cognito: Any) -> Tokens:
    box = app_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
    email = confirmed_user(app_client, box)
    cognito.client.admin_add_user_to_group(
        UserPoolId=cognito.pool.user_pool_id, Username=email, GroupName="admin"
    )
    return sign_in(app_client, email)


@pytest.fixture
def user(client: TestClient, outbox: DevOutbox) -> tuple[str, Tokens]:
    return signed_in_user(client, outbox)


@pytest.fixture
def mfa_user(client: TestClient, user: tuple[str, Tokens]) -> tuple[str, Tokens, str]:
    """A user who turned TOTP on over the API (their tokens from before still work), and
    the secret their authenticator holds."""
    email, tokens = user
    secret = enable_totp(client, tokens)
    return email, tokens, secret


# --------------------------------------------------------------------------- the code helper


class TestCodeHelper:
    def test_rfc6238_sha1_vectors(self):
        # RFC 6238 appendix B (SHA-1 key "12345678901234567890"), last 6 of the 8 digits.
        secret = base64.b32encode(b"12345678901234567890").decode()
        assert totp_at(secret, 59) == "287082"
        assert totp_at(secret, 1111111109) == "081804"
        assert totp_at(secret, 1234567890) == "005924"
        assert totp_at(secret, 2000000000) == "279037"

    def test_matches_cryptography_as_moto_uses_it(self):
        key = base64.b32decode(MOTO_SECRET + "====")
        reference = CryptographyTOTP(key, 6, SHA1(), 30, enforce_key_length=False)
        for at in (0, 29, 30, 1_700_000_000, 1_700_000_029, 2_000_000_000):
            assert totp_at(MOTO_SECRET, at) == reference.generate(at).decode()
            assert totp_at(MOTO_SECRET.lower(), at) == totp_at(MOTO_SECRET, at)

    def test_wrong_code_is_no_nearby_code(self):
        code = wrong_code()
        now = time.time()
        assert all(code != totp_at(MOTO_SECRET, now + k * 30) for k in (-1, 0, 1))


# --------------------------------------------------------------------------- set-up


class TestSetUp:
    def test_start_returns_the_secret_and_an_otpauth_uri(self, client, settings, user):
        email, tokens = user
        response = client.post(TOTP, headers=tokens.bearer)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {"secret_code", "otpauth_uri"}
        secret = body["secret_code"]
        assert re.fullmatch(r"[A-Z2-7]{32}", secret)  # base32, upper case, as apps want it

        uri = urlsplit(body["otpauth_uri"])
        assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
        assert unquote(uri.path) == f"/{settings.totp_issuer}:{email}"
        query = {k: v[0] for k, v in parse_qs(uri.query).items()}
        assert query["secret"] == secret
        assert query["issuer"] == settings.totp_issuer
        assert query.get("digits", "6") == "6"
        assert query.get("period", "30") == "30"
        assert query.get("algorithm", "SHA1") == "SHA1"

        # Starting is not turning on.
        assert me(client, tokens)["mfa_enabled"] is False
        assert sign_in_raw(client, email)["kind"] == "tokens"

    def test_start_needs_a_bearer_token(self, client):
        assert_problem(client.post(TOTP), 401, "not_authenticated")
        assert_problem(client.post(VERIFY, json={"code": "123456"}), 401, "not_authenticated")
        assert_problem(client.delete(TOTP), 401, "not_authenticated")

    def test_wrong_code_is_invalid_code_and_mfa_stays_off(self, client, user):
        email, tokens = user
        setup = client.post(TOTP, headers=tokens.bearer)
        assert setup.status_code == 200
        response = client.post(
            VERIFY, json={"code": wrong_code(setup.json()["secret_code"])}, headers=tokens.bearer
        )
        assert_problem(response, 400, "invalid_code")
        assert me(client, tokens)["mfa_enabled"] is False
        assert sign_in_raw(client, email)["kind"] == "tokens"

    @pytest.mark.parametrize("code", ["12345", "1234567", "12a456", ""])
    def test_malformed_code_is_a_validation_error(self, client, user, code):
        _, tokens = user
        response = client.post(VERIFY, json={"code": code}, headers=tokens.bearer)
        assert_problem(response, 422, "validation_error")

    def test_right_code_turns_mfa_on(self, client, user):
        email, tokens = user
        setup = client.post(TOTP, headers=tokens.bearer).json()
        response = client.post(
            VERIFY, json={"code": current_code(setup["secret_code"])}, headers=tokens.bearer
        )
        assert response.status_code == 204, response.text
        assert response.content == b""
        assert me(client, tokens)["mfa_enabled"] is True
        mfa_challenge(client, email)


# --------------------------------------------------------------------------- the dev secret


class TestDevSecret:
    """moto's fixed 60-bit secret is refused by pyotp and authenticator apps; dev mode hands
    out a real 160-bit secret per user and checks codes against it."""

    def test_pyotp_refuses_motos_secret(self):
        # Why the dev gateway exists: an app (or pyotp) cannot use what moto hands out.
        with pytest.raises(ValueError):
            pyotp.TOTP(MOTO_SECRET).now()

    def test_each_user_gets_a_160_bit_secret(self, client, outbox):
        secrets = set()
        for _ in range(2):
            _, tokens = signed_in_user(client, outbox)
            response = client.post(TOTP, headers=tokens.bearer)
            assert response.status_code == 200, response.text
            secret = response.json()["secret_code"]
            assert len(base64.b32decode(secret)) == 20
            secrets.add(secret)
        assert len(secrets) == 2 and MOTO_SECRET not in secrets

    def test_pyotp_codes_set_up_and_answer_the_challenge(self, client, user):
        email, tokens = user
        setup = client.post(TOTP, headers=tokens.bearer).json()
        authenticator = pyotp.parse_uri(setup["otpauth_uri"])  # what a QR scan gives an app
        assert authenticator.secret == setup["secret_code"]
        wait_for_fresh_step()
        verified = client.post(VERIFY, json={"code": authenticator.now()}, headers=tokens.bearer)
        assert verified.status_code == 204, verified.text

        session = mfa_challenge(client, email)
        wait_for_fresh_step()
        response = client.post(CHALLENGE, json=mfa_answer(email, session, authenticator.now()))
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "tokens"

    def test_motos_code_is_refused(self, client, user):
        email, tokens = user
        setup = client.post(TOTP, headers=tokens.bearer).json()
        moto = client.post(VERIFY, json={"code": current_code(MOTO_SECRET)}, headers=tokens.bearer)
        if current_code(MOTO_SECRET) != current_code(setup["secret_code"]):
            assert_problem(moto, 400, "invalid_code")
        enable = current_code(setup["secret_code"])
        assert client.post(VERIFY, json={"code": enable}, headers=tokens.bearer).status_code == 204

        session = mfa_challenge(client, email)
        code = current_code(MOTO_SECRET)
        if code not in {totp_at(setup["secret_code"], time.time() + k * 30) for k in (-1, 0, 1)}:
            wrong = client.post(CHALLENGE, json=mfa_answer(email, session, code))
            assert_problem(wrong, 400, "invalid_code")
        right = client.post(
            CHALLENGE, json=mfa_answer(email, session, current_code(setup["secret_code"]))
        )
        assert right.status_code == 200, right.text

    def test_a_new_secret_replaces_the_old_only_once_verified(self, client, mfa_user):
        # As in Cognito: associating again gives a pending secret; sign-in keeps using the
        # one in use until the new one is verified. (Gateway calls, below the endpoints.)
        email, tokens, old = mfa_user
        gateway = client.app.state.authsvc.gateway
        new = gateway.associate_software_token(tokens.access_token)
        assert new != old and len(base64.b32decode(new)) == 20

        session = mfa_challenge(client, email)
        answered = client.post(CHALLENGE, json=mfa_answer(email, session, current_code(old)))
        assert answered.status_code == 200, answered.text

        assert gateway.verify_software_token(tokens.access_token, current_code(new)) == "SUCCESS"
        session = mfa_challenge(client, email)
        stale = current_code(old)
        if stale not in {totp_at(new, time.time() + k * 30) for k in (-1, 0, 1)}:
            refused = client.post(CHALLENGE, json=mfa_answer(email, session, stale))
            assert_problem(refused, 400, "invalid_code")
        answered = client.post(CHALLENGE, json=mfa_answer(email, session, current_code(new)))
        assert answered.status_code == 200, answered.text

    def test_previous_step_is_accepted(self, client, mfa_user):
        # Cognito tolerates a little clock drift; so does dev mode (one 30 s step).
        email, _, secret = mfa_user
        session = mfa_challenge(client, email)
        response = client.post(
            CHALLENGE, json=mfa_answer(email, session, totp_at(secret, time.time() - 30))
        )
        assert response.status_code == 200, response.text


# --------------------------------------------------------------------------- sign-in


class TestSignInChallenge:
    def test_wrong_then_right_code(self, client, mfa_user):
        email, _, secret = mfa_user
        session = mfa_challenge(client, email)
        wrong = client.post(CHALLENGE, json=mfa_answer(email, session, wrong_code(secret)))
        assert_problem(wrong, 400, "invalid_code")
        assert "access_token" not in wrong.text

        # The session survives a wrong code.
        response = client.post(CHALLENGE, json=mfa_answer(email, session, current_code(secret)))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["kind"] == "tokens"
        assert body["access_token"] and body["id_token"] and body["refresh_token"]
        tokens = Tokens(body["access_token"], body["id_token"], body["refresh_token"])
        assert me(client, tokens)["email"] == email

    def test_missing_code_is_a_validation_error(self, client, mfa_user):
        email, _, secret = mfa_user
        session = mfa_challenge(client, email)
        body = {"challenge": "SOFTWARE_TOKEN_MFA", "session": session, "email": email}
        problem = assert_problem(client.post(CHALLENGE, json=body), 422, "validation_error")
        # A schema error (the body is a union on `challenge`), naming the missing field.
        assert any("code" in map(str, e["loc"]) for e in problem["errors"]), problem

    def test_forged_session_is_refused(self, client, mfa_user):
        email, _, secret = mfa_user
        response = client.post(
            CHALLENGE, json=mfa_answer(email, str(uuid.uuid4()), current_code(secret))
        )
        assert_problem(response, 400, "invalid_session")
        assert "access_token" not in response.text

    def test_wrong_password_gets_no_challenge(self, client, mfa_user):
        email, _, secret = mfa_user
        response = client.post(SIGN_IN, json={"email": email, "password": "Wrong-Passw0rd!"})
        assert_problem(response, 401, "invalid_credentials")


# --------------------------------------------------------------------------- turning it off


class TestTurningOff:
    def test_admin_sees_mfa_and_turns_it_off(self, client, admin, mfa_user):
        email, tokens, secret = mfa_user
        username = me(client, tokens)["username"]
        path = f"{ADMIN_USERS}/{username}"

        shown = client.get(path, headers=admin.bearer)
        assert shown.status_code == 200, shown.text
        assert shown.json()["mfa_enabled"] is True

        response = client.delete(f"{path}/mfa", headers=admin.bearer)
        assert response.status_code == 204, response.text

        assert client.get(path, headers=admin.bearer).json()["mfa_enabled"] is False
        assert me(client, tokens)["mfa_enabled"] is False
        assert sign_in_raw(client, email)["kind"] == "tokens"

    def test_admin_mfa_off_needs_an_admin(self, client, mfa_user):
        email, tokens, secret = mfa_user
        username = me(client, tokens)["username"]
        response = client.delete(f"{ADMIN_USERS}/{username}/mfa", headers=tokens.bearer)
        assert_problem(response, 403, "forbidden")
        mfa_challenge(client, email)  # still on

    def test_admin_mfa_off_for_an_unknown_user(self, client, admin):
        response = client.delete(f"{ADMIN_USERS}/{uuid.uuid4()}/mfa", headers=admin.bearer)
        assert_problem(response, 404, "not_found")

    def test_user_turns_it_off(self, client, mfa_user):
        email, tokens, secret = mfa_user
        response = client.delete(TOTP, headers=tokens.bearer)
        assert response.status_code == 204, response.text
        # Turning MFA off ends every session (issue 11): sign in again, without a code.
        assert client.get("/v1/me", headers=tokens.bearer).status_code == 401
        assert sign_in_raw(client, email)["kind"] == "tokens"
        assert me(client, sign_in(client, email))["mfa_enabled"] is False

    def test_turn_on_again_after_off(self, client, mfa_user):
        email, tokens, secret = mfa_user
        assert client.delete(TOTP, headers=tokens.bearer).status_code == 204
        tokens = sign_in(client, email)
        enable_totp(client, tokens)
        assert me(client, tokens)["mfa_enabled"] is True
        mfa_challenge(client, email)


# --------------------------------------------------------------------------- rate limits


class CognitoCalls:
    """Every call the app's boto3 cognito-idp client makes."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.names: list[str] = []
        self._lock = threading.Lock()
        self.unique_id = f"mfa-count-{uuid.uuid4().hex}"
        client.meta.events.register(
            "before-call.cognito-identity-provider", self, unique_id=self.unique_id
        )

    def __call__(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self.names.append(getattr(model, "name", "?"))

    def close(self) -> None:
        self.client.meta.events.unregister(
            "before-call.cognito-identity-provider", unique_id=self.unique_id
        )

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.names[mark:]

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.names)


@pytest.fixture(scope="module")
def limited(cognito: Any, database_url: str, app_client: TestClient) -> Iterator[TestClient]:
    """An app with the rate limits on and 3 wrong codes allowed per hour."""
    settings = make_settings(
        cognito, database_url, rate_limits_enabled=True, rate_limit_code_failures="3/hour"
    )
    box = app_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
    with TestClient(create_app(settings, outbox=box), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def calls(limited: TestClient) -> Iterator[CognitoCalls]:
    counter = CognitoCalls(limited.app.state.authsvc.gateway.client)  # type: ignore[attr-defined]
    yield counter
    counter.close()


class TestWrongCodesAreLimited:
    def test_fourth_challenge_answer_is_429_without_a_cognito_call(
        self, limited, calls, client, outbox
    ):
        email, tokens = signed_in_user(client, outbox)
        secret = enable_totp(client, tokens)
        session = mfa_challenge(limited, email)
        for _ in range(3):
            wrong = limited.post(CHALLENGE, json=mfa_answer(email, session, wrong_code(secret)))
            assert_problem(wrong, 400, "invalid_code")
        assert "RespondToAuthChallenge" in calls.names

        mark = calls.count
        # Even the right code is refused now: the limit is checked before Cognito is asked.
        refused = limited.post(CHALLENGE, json=mfa_answer(email, session, current_code(secret)))
        assert_problem(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) > 0
        assert calls.since(mark) == []

        # A new sign-in does not reset the count of wrong codes.
        session = mfa_challenge(limited, email)
        mark = calls.count
        again = limited.post(CHALLENGE, json=mfa_answer(email, session, current_code(secret)))
        assert_problem(again, 429, "rate_limited")
        assert calls.since(mark) == []

    def test_the_count_is_per_user(self, limited, client, outbox):
        email, tokens = signed_in_user(client, outbox)
        secret = enable_totp(client, tokens)
        other, other_tokens = signed_in_user(client, outbox)
        other_secret = enable_totp(client, other_tokens)
        session = mfa_challenge(limited, email)
        for _ in range(3):
            response = limited.post(CHALLENGE, json=mfa_answer(email, session, wrong_code(secret)))
            assert_problem(response, 400, "invalid_code")
        assert_problem(
            limited.post(CHALLENGE, json=mfa_answer(email, session, current_code(secret))),
            429,
            "rate_limited",
        )
        other_session = mfa_challenge(limited, other)
        response = limited.post(
            CHALLENGE, json=mfa_answer(other, other_session, current_code(other_secret))
        )
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "tokens"

    def test_wrong_set_up_codes_are_limited_too(self, limited, calls, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        setup = limited.post(TOTP, headers=tokens.bearer)
        assert setup.status_code == 200
        secret = setup.json()["secret_code"]
        for _ in range(3):
            response = limited.post(
                VERIFY, json={"code": wrong_code(secret)}, headers=tokens.bearer
            )
            assert_problem(response, 400, "invalid_code")
        mark = calls.count
        refused = limited.post(VERIFY, json={"code": current_code(secret)}, headers=tokens.bearer)
        assert_problem(refused, 429, "rate_limited")
        assert calls.since(mark) == []
        assert me(limited, tokens)["mfa_enabled"] is False
