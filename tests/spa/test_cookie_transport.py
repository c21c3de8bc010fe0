"""Cookie transport for single-page apps (DESIGN §5) and CORS.

With ``X-Token-Transport: cookie`` the refresh token travels in a ``__Host-`` cookie and
never in a body; using the cookie (refresh, sign-out) needs ``X-CSRF: 1`` and an allowed
``Origin``. Without the header nothing changes for bearer clients.

httpx's cookie jar never sends a ``Secure`` cookie over plain http (the TestClient's
``http://testserver``), so these tests send the ``Cookie`` header themselves, echoing the
value exactly as the server set it — which is what a browser does.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.auth.transport import COOKIE
from authsvc.config import Settings
from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import (
    PASSWORD,
    Tokens,
    assert_problem,
    confirmed_user,
    new_email,
    sign_in,
)
from tests.mfa.support import CHALLENGE, current_code, enable_totp, mfa_answer

ORIGIN = "https://app.example.test"
FOREIGN = "https://evil.example.test"
COOKIE_MODE = {"X-Token-Transport": "cookie"}
CSRF = {"X-CSRF": "1"}
SIGN_IN = "/v1/auth/sign-in"
REFRESH = "/v1/auth/refresh"
SIGN_OUT = "/v1/auth/sign-out"
SESSION = "/v1/auth/session"
TEMPORARY = "Temp-Passw0rd!"
NEW_PASSWORD = "Brand-New-Passw0rd!"
CHOSEN = "Chosen-Passw0rd!"


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class SetCookie:
    """One Set-Cookie header, split into its name, raw value and attributes."""

    name: str
    value: str
    attributes: dict[str, str]  # lower-case name -> value ("" for a flag)

    @classmethod
    def parse(cls, header: str) -> SetCookie:
        first, *rest = (part.strip() for part in header.split(";"))
        name, _, value = first.partition("=")
        attributes: dict[str, str] = {}
        for part in rest:
            if part:
                key, _, val = part.partition("=")
                attributes[key.strip().lower()] = val.strip()
        return cls(name.strip(), value.strip(), attributes)

    @property
    def max_age(self) -> int:
        return int(self.attributes["max-age"])


def set_cookies(response: Any) -> list[SetCookie]:
    return [SetCookie.parse(h) for h in response.headers.get_list("set-cookie")]


def refresh_cookie(response: Any) -> SetCookie:
    """The one Set-Cookie for the refresh cookie, checked against DESIGN §5."""
    cookies = set_cookies(response)
    assert [c.name for c in cookies] == [COOKIE], response.headers.get_list("set-cookie")
    cookie = cookies[0]
    assert cookie.name.startswith("__Host-")
    assert "httponly" in cookie.attributes
    assert "secure" in cookie.attributes
    assert cookie.attributes.get("samesite", "").lower() == "strict"
    assert cookie.attributes.get("path") == "/"
    assert "domain" not in cookie.attributes  # a __Host- cookie must not carry one
    return cookie


def issued_cookie(response: Any, settings: Settings) -> str:
    """Assert a response delivered the refresh token as the cookie only; return its value."""
    cookie = refresh_cookie(response)
    assert cookie.max_age > 0
    assert cookie.max_age == settings.refresh_cookie_max_age_days * 24 * 3600
    assert cookie.value and cookie.value != '""'
    body = response.json()
    assert body["kind"] == "tokens", body
    assert body["access_token"] and body["id_token"]
    assert body.get("refresh_token") is None, "the refresh token must not be in the body"
    assert cookie.value not in response.text
    return cookie.value


def assert_cleared(response: Any) -> None:
    cookie = refresh_cookie(response)
    assert cookie.max_age == 0
    assert cookie.value in ("", '""')


def assert_bearer_tokens(response: Any) -> dict[str, Any]:
    assert response.status_code in (200, 201), response.text
    assert response.headers.get_list("set-cookie") == []
    body: dict[str, Any] = response.json()
    assert body["kind"] == "tokens", body
    assert isinstance(body["refresh_token"], str) and body["refresh_token"]
    return body


def with_cookie(value: str, **headers: str) -> dict[str, str]:
    return {"Cookie": f"{COOKIE}={value}", **headers}


def sign_in_with_cookie(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post(SIGN_IN, json={"email": email, "password": password}, headers=COOKIE_MODE)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def spa_settings(cognito: Any, database_url: str) -> Settings:
    return make_settings(cognito, database_url, cors_origins=[ORIGIN])


@pytest.fixture(scope="module")
def spa_outbox(app_client: TestClient) -> DevOutbox:
    box: DevOutbox | None = app_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
    assert box is not None
    return box


@pytest.fixture(scope="module")
def spa(spa_settings: Settings, spa_outbox: DevOutbox) -> Iterator[TestClient]:
    """An app whose CORS allowlist (and so cookie Origin allowlist) is ORIGIN.

    It shares the session app's dev outbox: both apps' outbox workers poll one database,
    and whichever delivers an email, the test finds it.
    """
    app = create_app(spa_settings, outbox=spa_outbox)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(autouse=True)
def _empty_jar(spa: TestClient) -> Iterator[None]:
    # Nothing may ride along from the jar: every cookie a test sends, it sends by hand.
    spa.cookies.clear()
    yield
    spa.cookies.clear()


@pytest.fixture(scope="module")
def spa_admin(spa: TestClient, spa_outbox: DevOutbox, cognito: Any) -> Tokens:
    email = confirmed_user(spa, spa_outbox)
    cognito.client.admin_add_user_to_group(
        UserPoolId=cognito.pool.user_pool_id, Username=email, GroupName="admin"
    )
    return sign_in(spa, email)


@pytest.fixture
def user(spa: TestClient, outbox: DevOutbox) -> str:
    return confirmed_user(spa, outbox)


@pytest.fixture
def cookie(spa: TestClient, spa_settings: Settings, user: str) -> str:
    """A refresh cookie, as a browser holds it after a cookie-mode sign-in."""
    response = sign_in_with_cookie(spa, user)
    assert response.status_code == 200, response.text
    return issued_cookie(response, spa_settings)


def admin_created(cognito: Any) -> str:
    email = new_email("forced")
    cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Forced"},
        ],
    )
    return email


def invitation_token(spa: TestClient, admin: Tokens, outbox: DevOutbox, email: str) -> str:
    response = spa.post(
        "/v1/invitations", json={"email": email, "family_name": "Invitee"}, headers=admin.bearer
    )
    assert response.status_code == 201, response.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for message in outbox.list(to=email, kind="invitation"):
            if message.link and "#token=" in message.link:
                return message.link.split("#token=", 1)[1]
        time.sleep(0.05)
    raise AssertionError(f"no invitation email for {email}")


# --------------------------------------------------------------------------- issuing


class TestCookieIsIssued:
    def test_sign_in(self, spa, spa_settings, user):
        response = sign_in_with_cookie(spa, user)
        assert response.status_code == 200, response.text
        issued_cookie(response, spa_settings)
        assert response.headers["cache-control"] == "no-store"

    def test_sign_in_bearer_mode_is_unchanged(self, spa, user):
        response = spa.post(SIGN_IN, json={"email": user, "password": PASSWORD})
        assert_bearer_tokens(response)

    def test_header_value_is_case_insensitive(self, spa, spa_settings, user):
        response = spa.post(
            SIGN_IN,
            json={"email": user, "password": PASSWORD},
            headers={"X-Token-Transport": " Cookie "},
        )
        issued_cookie(response, spa_settings)

    def test_other_transport_values_mean_bearer(self, spa, user):
        response = spa.post(
            SIGN_IN,
            json={"email": user, "password": PASSWORD},
            headers={"X-Token-Transport": "bearer"},
        )
        assert_bearer_tokens(response)

    def test_failed_sign_in_sets_no_cookie(self, spa, user):
        response = spa.post(
            SIGN_IN, json={"email": user, "password": "Wrong-Passw0rd!"}, headers=COOKIE_MODE
        )
        assert_problem(response, 401, "invalid_credentials")
        assert response.headers.get_list("set-cookie") == []

    def test_new_password_required_challenge(self, spa, spa_settings, cognito):
        email = admin_created(cognito)
        first = sign_in_with_cookie(spa, email, TEMPORARY)
        assert first.status_code == 200, first.text
        challenge = first.json()
        assert challenge["kind"] == "challenge"
        assert challenge["challenge"] == "NEW_PASSWORD_REQUIRED"
        assert first.headers.get_list("set-cookie") == []  # no tokens yet, no cookie
        answer = {
            "challenge": "NEW_PASSWORD_REQUIRED",
            "session": challenge["session"],
            "email": email,
            "new_password": NEW_PASSWORD,
        }
        response = spa.post(CHALLENGE, json=answer, headers=COOKIE_MODE)
        assert response.status_code == 200, response.text
        issued_cookie(response, spa_settings)

    def test_new_password_required_challenge_bearer_mode(self, spa, cognito):
        email = admin_created(cognito)
        first = spa.post(SIGN_IN, json={"email": email, "password": TEMPORARY}).json()
        answer = {
            "challenge": "NEW_PASSWORD_REQUIRED",
            "session": first["session"],
            "email": email,
            "new_password": NEW_PASSWORD,
        }
        assert_bearer_tokens(spa.post(CHALLENGE, json=answer))

    def test_software_token_mfa_challenge(self, spa, spa_settings, user):
        secret = enable_totp(spa, sign_in(spa, user))
        first = sign_in_with_cookie(spa, user)
        assert first.status_code == 200, first.text
        challenge = first.json()
        assert challenge["kind"] == "challenge"
        assert challenge["challenge"] == "SOFTWARE_TOKEN_MFA"
        assert first.headers.get_list("set-cookie") == []
        answer = mfa_answer(user, challenge["session"], current_code(secret))
        response = spa.post(CHALLENGE, json=answer, headers=COOKIE_MODE)
        assert response.status_code == 200, response.text
        value = issued_cookie(response, spa_settings)
        # The cookie works like any other refresh cookie.
        refreshed = spa.post(REFRESH, headers=with_cookie(value, Origin=ORIGIN, **CSRF))
        assert refreshed.status_code == 200, refreshed.text

    def test_software_token_mfa_challenge_bearer_mode(self, spa, user):
        secret = enable_totp(spa, sign_in(spa, user))
        challenge = spa.post(SIGN_IN, json={"email": user, "password": PASSWORD}).json()
        assert challenge["challenge"] == "SOFTWARE_TOKEN_MFA"
        answer = mfa_answer(user, challenge["session"], current_code(secret))
        assert_bearer_tokens(spa.post(CHALLENGE, json=answer))

    def test_refresh_from_the_cookie_sets_it_again(self, spa, spa_settings, cookie):
        headers = with_cookie(cookie, Origin=ORIGIN, **CSRF, **COOKIE_MODE)
        response = spa.post(REFRESH, headers=headers)
        assert response.status_code == 200, response.text
        issued_cookie(response, spa_settings)
        session = spa.get(
            SESSION, headers={"Authorization": f"Bearer {response.json()['access_token']}"}
        )
        assert session.status_code == 200, session.text

    def test_refresh_with_a_body_in_cookie_mode(self, spa, spa_settings, user):
        tokens = sign_in(spa, user)
        response = spa.post(
            REFRESH, json={"refresh_token": tokens.refresh_token}, headers=COOKIE_MODE
        )
        assert response.status_code == 200, response.text
        issued_cookie(response, spa_settings)

    def test_refresh_bearer_mode_is_unchanged(self, spa, user):
        tokens = sign_in(spa, user)
        response = spa.post(REFRESH, json={"refresh_token": tokens.refresh_token})
        body = assert_bearer_tokens(response)
        assert body["refresh_token"] == tokens.refresh_token

    def test_invitation_accept(self, spa, spa_settings, spa_admin, outbox):
        email = new_email("invitee")
        token = invitation_token(spa, spa_admin, outbox, email)
        response = spa.post(
            "/v1/invitations/accept",
            json={"token": token, "password": CHOSEN},
            headers=COOKIE_MODE,
        )
        assert response.status_code == 201, response.text
        value = issued_cookie(response, spa_settings)
        refreshed = spa.post(REFRESH, headers=with_cookie(value, Origin=ORIGIN, **CSRF))
        assert refreshed.status_code == 200, refreshed.text

    def test_invitation_accept_bearer_mode(self, spa, spa_admin, outbox):
        email = new_email("invitee")
        token = invitation_token(spa, spa_admin, outbox, email)
        response = spa.post("/v1/invitations/accept", json={"token": token, "password": CHOSEN})
        assert_bearer_tokens(response)


# --------------------------------------------------------------------------- using the cookie


class TestRefreshFromTheCookie:
    def test_without_x_csrf_is_forbidden(self, spa, cookie):
        response = spa.post(REFRESH, headers=with_cookie(cookie, Origin=ORIGIN))
        assert_problem(response, 403, "forbidden")
        # A forged request must not be able to sign the user out either.
        assert response.headers.get_list("set-cookie") == []

    def test_wrong_x_csrf_value_is_forbidden(self, spa, cookie):
        response = spa.post(REFRESH, headers=with_cookie(cookie, Origin=ORIGIN, **{"X-CSRF": "0"}))
        assert_problem(response, 403, "forbidden")

    def test_foreign_origin_is_forbidden(self, spa, cookie):
        response = spa.post(REFRESH, headers=with_cookie(cookie, Origin=FOREIGN, **CSRF))
        assert_problem(response, 403, "forbidden")
        assert response.headers.get_list("set-cookie") == []
        assert "access-control-allow-origin" not in response.headers

    def test_lookalike_origins_are_forbidden(self, spa, cookie):
        for origin in (
            "http://app.example.test",  # another scheme
            "https://app.example.test:8443",  # another port
            "https://app.example.test.evil.test",
            "null",
        ):
            response = spa.post(REFRESH, headers=with_cookie(cookie, Origin=origin, **CSRF))
            assert_problem(response, 403, "forbidden")

    def test_without_origin_is_forbidden(self, spa, cookie):
        response = spa.post(REFRESH, headers=with_cookie(cookie, **CSRF))
        assert_problem(response, 403, "forbidden")

    def test_allowed_origin_is_accepted(self, spa, cookie):
        response = spa.post(REFRESH, headers=with_cookie(cookie, Origin=ORIGIN, **CSRF))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["kind"] == "tokens" and body["access_token"]
        # Even without X-Token-Transport, a token read from the cookie stays in the cookie:
        # echoing it into a body would hand the HttpOnly secret to any script on the page.
        assert body.get("refresh_token") is None
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["access-control-allow-credentials"] == "true"

    def test_neither_body_nor_cookie_is_not_authenticated(self, spa):
        response = spa.post(REFRESH, headers={"Origin": ORIGIN, **CSRF, **COOKIE_MODE})
        assert_problem(response, 401, "not_authenticated")

    def test_neither_body_nor_cookie_without_headers(self, spa):
        assert_problem(spa.post(REFRESH), 401, "not_authenticated")

    def test_garbage_cookie_is_refused_and_cleared(self, spa):
        headers = with_cookie("not-a-refresh-token", Origin=ORIGIN, **CSRF)
        response = spa.post(REFRESH, headers=headers)
        assert_problem(response, 401, "invalid_token")
        assert_cleared(response)


class TestSignOutWithTheCookie:
    def _signed_in(self, spa: TestClient, user: str) -> tuple[str, dict[str, str]]:
        response = sign_in_with_cookie(spa, user)
        assert response.status_code == 200, response.text
        value = refresh_cookie(response).value
        return value, {"Authorization": f"Bearer {response.json()['access_token']}"}

    def test_without_x_csrf_is_forbidden(self, spa, user):
        value, bearer = self._signed_in(spa, user)
        response = spa.post(SIGN_OUT, headers=with_cookie(value, Origin=ORIGIN, **bearer))
        assert_problem(response, 403, "forbidden")
        assert response.headers.get_list("set-cookie") == []
        # Nothing was signed out.
        assert spa.get(SESSION, headers=bearer).status_code == 200

    def test_foreign_origin_is_forbidden(self, spa, user):
        value, bearer = self._signed_in(spa, user)
        headers = with_cookie(value, Origin=FOREIGN, **CSRF, **bearer)
        assert_problem(spa.post(SIGN_OUT, headers=headers), 403, "forbidden")
        assert spa.get(SESSION, headers=bearer).status_code == 200

    def test_without_origin_is_forbidden(self, spa, user):
        value, bearer = self._signed_in(spa, user)
        assert_problem(
            spa.post(SIGN_OUT, headers=with_cookie(value, **CSRF, **bearer)), 403, "forbidden"
        )

    def test_allowed_origin_signs_out_and_clears_the_cookie(self, spa, user):
        value, bearer = self._signed_in(spa, user)
        response = spa.post(SIGN_OUT, headers=with_cookie(value, Origin=ORIGIN, **CSRF, **bearer))
        assert response.status_code == 204, response.text
        assert_cleared(response)
        # The access token is revoked ...
        assert spa.get(SESSION, headers=bearer).status_code == 401
        # ... and the old cookie no longer refreshes; the refusal clears it again.
        again = spa.post(REFRESH, headers=with_cookie(value, Origin=ORIGIN, **CSRF))
        assert_problem(again, 401, "invalid_token")
        assert_cleared(again)

    def test_bearer_sign_out_needs_no_csrf_and_sets_no_cookie(self, spa, user):
        tokens = sign_in(spa, user)
        response = spa.post(SIGN_OUT, headers=tokens.bearer)
        assert response.status_code == 204, response.text
        assert response.headers.get_list("set-cookie") == []
        refused = spa.post(REFRESH, json={"refresh_token": tokens.refresh_token})
        assert_problem(refused, 401, "invalid_token")
        assert refused.headers.get_list("set-cookie") == []  # bearer mode: no cookie games


# --------------------------------------------------------------------------- CORS


def preflight(client: TestClient, origin: str, method: str = "POST") -> Any:
    return client.options(
        REFRESH,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "content-type, x-csrf, x-token-transport",
        },
    )


def cors_headers(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.lower().startswith("access-control-")}


class TestCors:
    def test_preflight_from_a_foreign_origin_gets_no_allow_origin(self, spa):
        response = preflight(spa, FOREIGN)
        assert "access-control-allow-origin" not in response.headers
        assert response.headers.get("access-control-allow-origin") != "*"

    def test_preflight_from_the_allowed_origin(self, spa):
        response = preflight(spa, ORIGIN)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["access-control-allow-credentials"] == "true"
        allowed = {
            h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
        }
        assert {"content-type", "x-csrf", "x-token-transport"} <= allowed
        assert "*" not in response.headers["access-control-allow-headers"]
        assert "POST" in response.headers["access-control-allow-methods"]

    def test_actual_request_from_the_allowed_origin(self, spa, user):
        response = spa.post(
            SIGN_IN, json={"email": user, "password": PASSWORD}, headers={"Origin": ORIGIN}
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == ORIGIN
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "origin" in response.headers.get("vary", "").lower()

    def test_actual_request_from_a_foreign_origin(self, spa, user):
        response = spa.post(
            SIGN_IN, json={"email": user, "password": PASSWORD}, headers={"Origin": FOREIGN}
        )
        assert "access-control-allow-origin" not in response.headers

    def test_no_origins_configured_means_no_cors_headers(self, client, user):
        # The session app is built without cors_origins.
        assert not client.app.state.authsvc.settings.cors_origins
        for origin in (ORIGIN, FOREIGN):
            assert cors_headers(preflight(client, origin)) == {}
            response = client.post(
                SIGN_IN, json={"email": user, "password": PASSWORD}, headers={"Origin": origin}
            )
            assert response.status_code == 200, response.text
            assert cors_headers(response) == {}

    def test_cookie_is_refused_when_no_origin_is_allowed(self, client, user):
        response = sign_in_with_cookie(client, user)
        value = refresh_cookie(response).value
        response = client.post(REFRESH, headers=with_cookie(value, Origin=ORIGIN, **CSRF))
        assert_problem(response, 403, "forbidden")

    def test_wildcard_origin_is_a_configuration_error(self, cognito, database_url):
        with pytest.raises(ValueError, match=r"\*"):
            make_settings(cognito, database_url, cors_origins=["*"])
