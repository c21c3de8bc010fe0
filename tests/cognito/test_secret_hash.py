"""An app client with a secret: SECRET_HASH on every call that needs it (DESIGN §6).

moto checks SECRET_HASH on REFRESH_TOKEN_AUTH and on the SOFTWARE_TOKEN_MFA challenge
(REFERENCE.md), so a full flow through an app configured with a secret client proves the
hash is sent and right; a control without the secret proves moto really checks it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import struct
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from authsvc.cognito.gateway import CognitoGateway, SecretHasher, secret_hash
from authsvc.config import Settings
from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, assert_problem, latest_code, new_email

NEW_PASSWORD = "N3w-Passw0rd!"
MOTO_TOTP_SECRET = "asdfasdfasdf"  # moto gives every user this TOTP secret

# Properties of the template's client that a second client must share.
_COPIED = (
    "ExplicitAuthFlows",
    "ReadAttributes",
    "WriteAttributes",
    "PreventUserExistenceErrors",
    "EnableTokenRevocation",
    "AuthSessionValidity",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "TokenValidityUnits",
)


# --------------------------------------------------------------------------- the formula


def test_secret_hash_known_vector() -> None:
    # Computed independently: printf '%s' "$USERNAME$CLIENT_ID" |
    #   openssl dgst -sha256 -hmac "$SECRET" -binary | base64
    assert (
        secret_hash("alice@example.com", "7gq2hbpclqsd1nlh0r6dn6f0be", "v3ry-s3cret-client-secret")
        == "owjw7jXlxZyps0gcT0HsWKmDvdKYXMnYuuwAWDwgrDo="
    )


def test_secret_hash_uses_utf8() -> None:
    # AWS's examples encode username, client id and secret as UTF-8.
    assert secret_hash("usérname", "1abc", "sécret") == (
        "XZbPGl6Fw7zEZC7I28GQf9SnL+4KAM6487Ej3FQJSkg="
    )


@pytest.mark.parametrize(
    ("username", "client_id", "secret"),
    [
        ("bob@example.com", "client", "secret"),
        ("5b0f5e8e-1b7b-4a4c-9c36-2b5f0d4f6f11", "3n4b5urk1ft4fl3mg5e62d9ado", "x" * 52),
        ("", "client", "s"),
    ],
)
def test_secret_hash_matches_the_documented_formula(username, client_id, secret) -> None:
    # base64(HMAC-SHA256(key=client secret, message=username + client id))
    expected = base64.b64encode(
        hmac.new(secret.encode("utf-8"), (username + client_id).encode("utf-8"), "sha256").digest()
    ).decode()
    assert secret_hash(username, client_id, secret) == expected
    assert len(base64.b64decode(expected)) == hashlib.sha256().digest_size


def test_secret_hash_depends_on_each_input() -> None:
    base = secret_hash("user", "client", "secret")
    assert secret_hash("user2", "client", "secret") != base
    assert secret_hash("user", "client2", "secret") != base
    assert secret_hash("user", "client", "secret2") != base
    # The message is the plain concatenation, username first.
    assert secret_hash("userc", "lient", "secret") == base


def test_keyed_hasher_gives_the_known_vectors() -> None:
    # The gateway's hasher keys the HMAC once and copies it per call: same values as the
    # formula, call after call (a copy must not carry the previous message along).
    hasher = SecretHasher("7gq2hbpclqsd1nlh0r6dn6f0be", "v3ry-s3cret-client-secret")
    for _ in range(3):
        assert hasher("alice@example.com") == "owjw7jXlxZyps0gcT0HsWKmDvdKYXMnYuuwAWDwgrDo="
    assert SecretHasher("1abc", "sécret")("usérname") == (
        "XZbPGl6Fw7zEZC7I28GQf9SnL+4KAM6487Ej3FQJSkg="
    )
    for username in ("bob@example.com", "", "5b0f5e8e-1b7b-4a4c-9c36-2b5f0d4f6f11"):
        assert hasher(username) == secret_hash(
            username, "7gq2hbpclqsd1nlh0r6dn6f0be", "v3ry-s3cret-client-secret"
        )


def test_gateway_sends_the_known_vector_and_follows_a_changed_secret() -> None:
    settings = Settings(
        cognito_user_pool_id="us-east-1_example",
        cognito_client_id="7gq2hbpclqsd1nlh0r6dn6f0be",
        cognito_client_secret="v3ry-s3cret-client-secret",
        database_url="sqlite://",
        secret_key="secret-hash-test-key-0123456789",
    )
    gateway = CognitoGateway(settings, client=object())
    params = gateway._with_secret({"USERNAME": "alice@example.com"}, "alice@example.com")
    assert params["SECRET_HASH"] == "owjw7jXlxZyps0gcT0HsWKmDvdKYXMnYuuwAWDwgrDo="
    assert gateway._secret_kwarg("alice@example.com") == {
        "SecretHash": "owjw7jXlxZyps0gcT0HsWKmDvdKYXMnYuuwAWDwgrDo="
    }
    # A rotated secret (or client) is picked up: the keyed HMAC is rebuilt, not reused.
    gateway.client_id, gateway.client_secret = "1abc", "sécret"
    assert gateway.secret_hash("usérname") == "XZbPGl6Fw7zEZC7I28GQf9SnL+4KAM6487Ej3FQJSkg="
    gateway.client_secret = None
    assert gateway._with_secret({"USERNAME": "u"}, "u") == {"USERNAME": "u"}


# --------------------------------------------------------------------------- through the app


@dataclass
class SecretApp:
    client: TestClient
    outbox: DevOutbox
    client_id: str
    client_secret: str


@pytest.fixture(scope="module")
def secret_client(cognito) -> Iterator[tuple[str, str]]:
    """A second app client on the same pool, with a secret, like the template's otherwise."""
    template = cognito.client.describe_user_pool_client(
        UserPoolId=cognito.pool.user_pool_id, ClientId=cognito.pool.client_id
    )["UserPoolClient"]
    copied = {key: template[key] for key in _COPIED if key in template}
    assert "ALLOW_REFRESH_TOKEN_AUTH" in copied["ExplicitAuthFlows"]
    created = cognito.client.create_user_pool_client(
        UserPoolId=cognito.pool.user_pool_id,
        ClientName=f"authsvc-secret-{uuid.uuid4().hex[:6]}",
        GenerateSecret=True,
        **copied,
    )["UserPoolClient"]
    assert created["ClientSecret"]
    yield created["ClientId"], created["ClientSecret"]
    # moto's state is shared by the whole run: leave the pool as the template made it.
    cognito.client.delete_user_pool_client(
        UserPoolId=cognito.pool.user_pool_id, ClientId=created["ClientId"]
    )


def _app(cognito, database_url: str, client_id: str, secret: str | None) -> Iterator[SecretApp]:
    settings = make_settings(
        cognito, database_url, cognito_client_id=client_id, cognito_client_secret=secret
    )
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield SecretApp(client, app.state.authsvc.outbox, client_id, secret or "")


@pytest.fixture(scope="module")
def secret_app(cognito, database_url, secret_client) -> Iterator[SecretApp]:
    client_id, secret = secret_client
    yield from _app(cognito, database_url, client_id, secret)


@pytest.fixture(scope="module")
def no_secret_app(cognito, database_url, secret_client) -> Iterator[SecretApp]:
    """The same app client, but authsvc configured without its secret."""
    yield from _app(cognito, database_url, secret_client[0], None)


@pytest.fixture(scope="module")
def wrong_secret_app(cognito, database_url, secret_client) -> Iterator[SecretApp]:
    yield from _app(cognito, database_url, secret_client[0], "not-the-secret-" + "x" * 30)


def _sign_up_and_confirm(app: SecretApp, email: str, password: str = PASSWORD) -> None:
    response = app.client.post(
        "/v1/auth/sign-up", json={"email": email, "password": password, "family_name": "Secret"}
    )
    assert response.status_code == 202, response.text
    code = latest_code(app.outbox, email, "sign_up_code")
    response = app.client.post("/v1/auth/sign-up/confirm", json={"email": email, "code": code})
    assert response.status_code == 204, response.text


def _sign_in(app: SecretApp, email: str, password: str) -> Any:
    return app.client.post("/v1/auth/sign-in", json={"email": email, "password": password})


def _tokens(response: Any) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "tokens", body
    assert response.headers["Cache-Control"] == "no-store"
    return body


def _session(app: SecretApp, access_token: str) -> Any:
    return app.client.get("/v1/auth/session", headers={"Authorization": f"Bearer {access_token}"})


def test_full_flow_with_a_secret_client(secret_app: SecretApp) -> None:
    app = secret_app
    email = new_email("secret")
    _sign_up_and_confirm(app, email)

    signed_in = _tokens(_sign_in(app, email, PASSWORD))
    claims = jwt.decode(signed_in["access_token"], options={"verify_signature": False})
    assert claims["client_id"] == app.client_id
    assert _session(app, signed_in["access_token"]).json()["client_id"] == app.client_id

    # REFRESH_TOKEN_AUTH: moto refuses it without the right SECRET_HASH.
    refreshed = _tokens(
        app.client.post("/v1/auth/refresh", json={"refresh_token": signed_in["refresh_token"]})
    )
    assert refreshed["access_token"] != signed_in["access_token"]
    assert refreshed["refresh_token"] == signed_in["refresh_token"]
    session = _session(app, refreshed["access_token"])
    assert session.status_code == 200, session.text
    assert session.json()["sub"] == claims["sub"]

    # forgot / reset, then the new password signs in and the old one does not.
    response = app.client.post("/v1/auth/password/forgot", json={"email": email})
    assert response.status_code == 202, response.text
    code = latest_code(app.outbox, email, "password_reset_code")
    response = app.client.post(
        "/v1/auth/password/reset",
        json={"email": email, "code": code, "new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204, response.text
    assert_problem(_sign_in(app, email, PASSWORD), 401, "invalid_credentials")
    again = _tokens(_sign_in(app, email, NEW_PASSWORD))
    assert _session(app, again["access_token"]).status_code == 200
    refreshed = _tokens(
        app.client.post("/v1/auth/refresh", json={"refresh_token": again["refresh_token"]})
    )
    assert _session(app, refreshed["access_token"]).status_code == 200


def _totp(at: float, secret: str = MOTO_TOTP_SECRET) -> str:
    # RFC 6238 (SHA-1, 6 digits, 30 s), on moto's fixed secret. pyotp refuses a secret that
    # short, so the few lines are written out.
    padded = secret.upper() + "=" * (-len(secret) % 8)
    key = base64.b32decode(padded)
    digest = hmac.new(key, struct.pack(">Q", int(at // 30)), "sha1").digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def _totp_code() -> str:
    # moto accepts only the current 30 s step: do not start a code about to expire.
    if 30 - time.time() % 30 < 3:
        time.sleep(30 - time.time() % 30 + 0.1)
    return _totp(time.time())


def test_totp_helper_matches_rfc_6238() -> None:
    # RFC 6238 appendix B test secret "12345678901234567890" (SHA-1), T = 59 -> 94287082
    # (8 digits); the last 6 digits are what a 6-digit authenticator shows.
    secret = base64.b32encode(b"12345678901234567890").decode()
    assert _totp(59, secret) == "287082"
    assert _totp(1111111109, secret) == "081804"


def test_mfa_challenge_with_a_secret_client(secret_app: SecretApp, cognito) -> None:
    # moto checks SECRET_HASH when the SOFTWARE_TOKEN_MFA challenge is answered.
    app = secret_app
    email = new_email("secretmfa")
    _sign_up_and_confirm(app, email)
    access = _tokens(_sign_in(app, email, PASSWORD))["access_token"]
    cognito.client.associate_software_token(AccessToken=access)
    cognito.client.verify_software_token(AccessToken=access, UserCode=_totp_code())
    cognito.client.set_user_mfa_preference(
        AccessToken=access,
        SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True},
    )

    response = _sign_in(app, email, PASSWORD)
    assert response.status_code == 200, response.text
    challenge = response.json()
    assert challenge["kind"] == "challenge"
    assert challenge["challenge"] == "SOFTWARE_TOKEN_MFA"

    wrong = app.client.post(
        "/v1/auth/challenge",
        json={
            "challenge": "SOFTWARE_TOKEN_MFA",
            "session": challenge["session"],
            "email": email,
            "code": "000000" if _totp_code() != "000000" else "111111",
        },
    )
    assert_problem(wrong, 400, "invalid_code")

    challenge = _sign_in(app, email, PASSWORD).json()
    answered = app.client.post(
        "/v1/auth/challenge",
        json={
            "challenge": "SOFTWARE_TOKEN_MFA",
            "session": challenge["session"],
            "email": email,
            "code": _totp_code(),
        },
    )
    tokens = _tokens(answered)
    assert _session(app, tokens["access_token"]).json()["client_id"] == app.client_id
    refreshed = app.client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text


def test_control_without_the_secret_moto_refuses_refresh(
    secret_app: SecretApp, no_secret_app: SecretApp
) -> None:
    # Proves the emulator checks SECRET_HASH: the same refresh token, sent without it.
    email = new_email("nosecret")
    _sign_up_and_confirm(secret_app, email)
    tokens = _tokens(_sign_in(secret_app, email, PASSWORD))
    response = no_secret_app.client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert_problem(response, 401, "invalid_token")
    # ... while the properly configured app still refreshes it.
    ok = secret_app.client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert ok.status_code == 200, ok.text


def test_wrong_secret_refresh_is_invalid_token(
    secret_app: SecretApp, wrong_secret_app: SecretApp
) -> None:
    email = new_email("wrongsecret")
    _sign_up_and_confirm(secret_app, email)
    # moto does not check SECRET_HASH on USER_PASSWORD_AUTH: sign-in succeeds ...
    tokens = _tokens(_sign_in(wrong_secret_app, email, PASSWORD))
    # ... and refresh, where it is checked, is refused as a bad token, not a 500.
    response = wrong_secret_app.client.post(
        "/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    body = assert_problem(response, 401, "invalid_token")
    assert "SECRET_HASH" not in body["detail"]


def test_unwrapped_refresh_token_with_a_secret_client_is_invalid_token(
    secret_app: SecretApp,
) -> None:
    # With a secret, refresh needs the username: a bare Cognito refresh token is refused.
    response = secret_app.client.post("/v1/auth/refresh", json={"refresh_token": str(uuid.uuid4())})
    assert_problem(response, 401, "invalid_token")


@pytest.mark.parametrize("token", ["rt1.", "rt1.!!!!.abc", "rt1.YWJj", "rt1..abc", "rt1.//8.x"])
def test_malformed_wrapped_refresh_token_is_invalid_token(secret_app: SecretApp, token) -> None:
    response = secret_app.client.post("/v1/auth/refresh", json={"refresh_token": token})
    assert_problem(response, 401, "invalid_token")
