"""Security headers (REFERENCE.md, OWASP): on every kind of response, not just the happy ones.

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` on 200, 202, 204,
  redirects, problems (400/401/403/404/405/413/415/422) and a 500 from a crashing handler;
- ``Cache-Control: no-store`` on every response that carries a token or a challenge session;
- ``Strict-Transport-Security`` only when the request really came over TLS: present when a
  trusted proxy says ``X-Forwarded-Proto: https``, absent on plain HTTP and absent when an
  untrusted peer sends the header (through a real uvicorn on 127.0.0.1, configured like
  ``authsvc serve``, and on the middleware alone with synthetic ASGI scopes).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from authsvc.clientip import parse_networks
from authsvc.main import create_app
from authsvc.middleware import AuthSvcMiddleware
from tests.conftest import Emulator, make_settings
from tests.helpers import PASSWORD, Tokens, new_email, signed_in_user
from tests.invitations.support import CHOSEN_PASSWORD, invite_and_link, make_admin
from tests.mfa.support import TOTP

SECURITY = {"x-content-type-options": "nosniff", "referrer-policy": "no-referrer"}
HSTS = "strict-transport-security"
TEMPORARY = "Tempor4ry-Passw0rd!"


def assert_security_headers(response: Any) -> None:
    for name, value in SECURITY.items():
        assert response.headers.get(name) == value, (name, response.status_code, response.headers)


def assert_no_store(response: Any) -> None:
    assert "no-store" in response.headers.get("cache-control", ""), response.headers


def _outbox(client: TestClient) -> Any:
    return client.app.state.authsvc.outbox  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def user(app_client: TestClient) -> Tokens:
    return signed_in_user(app_client, _outbox(app_client))[1]


@pytest.fixture(scope="module")
def admin(app_client: TestClient, cognito: Emulator) -> Tokens:
    return make_admin(app_client, _outbox(app_client), cognito)


def _forced_user(cognito: Emulator) -> str:
    """A user made by an administrator: the first sign-in is a NEW_PASSWORD_REQUIRED."""
    email = new_email("hdr-forced")
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


# --------------------------------------------------------------------------- every response

Request = Callable[[TestClient, Tokens, Tokens, Any], Any]

RESPONSES: dict[str, tuple[Request, int]] = {
    "200 json": (lambda c, u, a, o: c.get("/v1/auth/session", headers=u.bearer), 200),
    "200 health": (lambda c, u, a, o: c.get("/healthz"), 200),
    "200 openapi": (lambda c, u, a, o: c.get("/openapi.json"), 200),
    "200 html docs": (lambda c, u, a, o: c.get("/docs"), 200),
    "200 metrics": (lambda c, u, a, o: c.get("/metrics"), 200),
    "201 invitation": (
        lambda c, u, a, o: c.post(
            "/v1/invitations",
            json={"email": new_email("hdr-invitee"), "family_name": "Invitee"},
            headers=a.bearer,
        ),
        201,
    ),
    "202 forgot": (
        lambda c, u, a, o: c.post("/v1/auth/password/forgot", json={"email": new_email()}),
        202,
    ),
    "204 sign-out": (
        lambda c, u, a, o: c.post("/v1/auth/sign-out", headers=signed_in_user(c, o)[1].bearer),
        204,
    ),
    "404 trailing slash": (lambda c, u, a, o: c.get("/v1/me/", follow_redirects=False), 404),
    "400 problem": (
        lambda c, u, a, o: c.post(
            "/v1/auth/sign-up/confirm", json={"email": new_email(), "code": "000000"}
        ),
        400,
    ),
    "401 problem": (lambda c, u, a, o: c.get("/v1/me"), 401),
    "403 problem": (lambda c, u, a, o: c.get("/v1/admin/users", headers=u.bearer), 403),
    "404 unknown path": (lambda c, u, a, o: c.get("/no/such/path"), 404),
    "404 unknown api path": (lambda c, u, a, o: c.get("/v1/no-such-thing"), 404),
    "404 problem": (
        lambda c, u, a, o: c.get("/v1/admin/users/no-such-user", headers=a.bearer),
        404,
    ),
    "405 problem": (lambda c, u, a, o: c.get("/v1/auth/sign-in"), 405),
    "413 problem": (
        lambda c, u, a, o: c.post(
            "/v1/auth/sign-in",
            content=b'{"email": "' + b"a" * 200_000 + b'"}',
            headers={"content-type": "application/json"},
        ),
        413,
    ),
    "415 problem": (
        lambda c, u, a, o: c.post(
            "/v1/auth/sign-in", content=b"email=a", headers={"content-type": "text/plain"}
        ),
        415,
    ),
    "422 schema": (lambda c, u, a, o: c.post("/v1/auth/sign-in", json={"email": "nope"}), 422),
    "422 not json": (
        lambda c, u, a, o: c.post(
            "/v1/auth/sign-in", content=b"{nope", headers={"content-type": "application/json"}
        ),
        422,
    ),
    "422 not utf-8": (
        lambda c, u, a, o: c.post(
            "/v1/auth/sign-in", content=b"\xff\xfe{", headers={"content-type": "application/json"}
        ),
        422,
    ),
}


@pytest.mark.parametrize("kind", list(RESPONSES))
def test_security_headers_on_every_kind_of_response(
    kind: str, client: TestClient, user: Tokens, admin: Tokens, outbox: Any
) -> None:
    request, status = RESPONSES[kind]
    response = request(client, user, admin, outbox)
    assert response.status_code == status, response.text
    assert_security_headers(response)
    assert response.headers.get("x-request-id")
    if status >= 400:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["status"] == status
    if status == 405:
        assert response.headers["allow"] == "POST"


def test_allow_lists_every_method_of_the_path(client: TestClient) -> None:
    # FastAPI keeps one route per method: the answer names all of them, not the first.
    response = client.put("/v1/admin/users/someone")
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == "DELETE, GET, PATCH"
    assert_security_headers(response)


def test_500_is_opaque_with_every_header(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = client.app.state.authsvc  # type: ignore[attr-defined]

    def crash(*_: Any, **__: Any) -> Any:
        raise RuntimeError("internal detail that must not leak: db=10.1.2.3")

    monkeypatch.setattr(state.auth, "forgot_password", crash)
    response = client.post("/v1/auth/password/forgot", json={"email": new_email()})
    assert response.status_code == 500, response.text
    assert_security_headers(response)
    assert_no_store(response)
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body == {
        "type": "urn:authsvc:problem:internal_error",
        "title": "Internal server error",
        "status": 500,
        "detail": "An unexpected error occurred.",
        "code": "internal_error",
        "request_id": response.headers["x-request-id"],
    }
    assert "10.1.2.3" not in response.text and "RuntimeError" not in response.text


# --------------------------------------------------------------------------- Cache-Control


class TestTokenResponsesAreNotStored:
    def test_sign_in(self, client: TestClient, outbox: Any) -> None:
        email, _ = signed_in_user(client, outbox)
        response = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200 and response.json()["kind"] == "tokens"
        assert_no_store(response)
        assert_security_headers(response)

    def test_sign_in_with_the_refresh_token_in_a_cookie(
        self, client: TestClient, outbox: Any
    ) -> None:
        email, _ = signed_in_user(client, outbox)
        response = client.post(
            "/v1/auth/sign-in",
            json={"email": email, "password": PASSWORD},
            headers={"X-Token-Transport": "cookie"},
        )
        assert response.status_code == 200, response.text
        assert response.headers.get("set-cookie")
        assert_no_store(response)
        client.cookies.clear()

    def test_challenge_and_its_answer(self, client: TestClient, cognito: Emulator) -> None:
        email = _forced_user(cognito)
        first = client.post("/v1/auth/sign-in", json={"email": email, "password": TEMPORARY})
        assert first.status_code == 200 and first.json()["kind"] == "challenge", first.text
        assert_no_store(first)  # the session is as good as a password for a few minutes
        answer = client.post(
            "/v1/auth/challenge",
            json={
                "challenge": "NEW_PASSWORD_REQUIRED",
                "session": first.json()["session"],
                "email": email,
                "new_password": PASSWORD,
            },
        )
        assert answer.status_code == 200 and answer.json()["kind"] == "tokens", answer.text
        assert_no_store(answer)
        assert_security_headers(answer)

    def test_refresh(self, client: TestClient, user: Tokens) -> None:
        response = client.post("/v1/auth/refresh", json={"refresh_token": user.refresh_token})
        assert response.status_code == 200, response.text
        assert_no_store(response)
        assert_security_headers(response)

    def test_invitation_accept(self, client: TestClient, admin: Tokens, outbox: Any) -> None:
        _, token = invite_and_link(client, admin, outbox, new_email("hdr-accept"))
        response = client.post(
            "/v1/invitations/accept", json={"token": token, "password": CHOSEN_PASSWORD}
        )
        assert response.status_code == 201, response.text
        assert response.json()["access_token"]
        assert_no_store(response)
        assert_security_headers(response)

    def test_invitation_lookup_and_totp_secret(
        self, client: TestClient, admin: Tokens, outbox: Any
    ) -> None:
        _, token = invite_and_link(client, admin, outbox, new_email("hdr-lookup"))
        assert_no_store(client.post("/v1/invitations/lookup", json={"token": token}))
        _, tokens = signed_in_user(client, outbox)
        setup = client.post(TOTP, headers=tokens.bearer)
        assert setup.status_code == 200, setup.text
        assert_no_store(setup)  # the TOTP secret

    def test_token_errors_are_not_stored_either(self, client: TestClient) -> None:
        response = client.post("/v1/auth/refresh", json={"refresh_token": "not-a-token"})
        assert response.status_code == 401
        assert_no_store(response)


# --------------------------------------------------------------------------- HSTS


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Server:
    """The app behind a real uvicorn on 127.0.0.1, configured like `authsvc serve`."""

    def __init__(self, app: Any) -> None:
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                log_level="warning",
                proxy_headers=False,  # as `authsvc serve`: authsvc decides whom to believe
                server_header=False,
                lifespan="off",  # /healthz and a 404 need no background workers
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _serve_mode_app(cognito: Emulator, database_url: str, trusted: list[str]) -> Any:
    return create_app(
        make_settings(
            cognito,
            database_url,
            dev_mode=False,
            secret_key="headers-test-secret-key-0123456789",
            trusted_proxies=trusted,
        )
    )


@pytest.fixture(scope="module")
def behind_trusted_proxy(cognito: Emulator, database_url: str) -> Iterator[str]:
    """Serve mode; 127.0.0.1 (where the test's requests come from) is a trusted proxy."""
    with _Server(_serve_mode_app(cognito, database_url, ["127.0.0.1/32"])) as server:
        yield server.base_url


@pytest.fixture(scope="module")
def behind_untrusted_peer(cognito: Emulator, database_url: str) -> Iterator[str]:
    """Serve mode; only 10.0.0.0/8 is trusted, so 127.0.0.1 is an ordinary client."""
    with _Server(_serve_mode_app(cognito, database_url, ["10.0.0.0/8"])) as server:
        yield server.base_url


class TestHstsOverRealHttp:
    @pytest.mark.parametrize("path", ["/healthz", "/v1/no-such-thing"])
    def test_absent_on_plain_http(self, behind_trusted_proxy: str, path: str) -> None:
        response = httpx.get(behind_trusted_proxy + path)
        assert HSTS not in response.headers
        assert_security_headers(response)

    @pytest.mark.parametrize("path", ["/healthz", "/v1/no-such-thing"])
    def test_present_when_a_trusted_proxy_ended_tls(
        self, behind_trusted_proxy: str, path: str
    ) -> None:
        response = httpx.get(behind_trusted_proxy + path, headers={"X-Forwarded-Proto": "https"})
        assert response.headers[HSTS] == "max-age=63072000; includeSubDomains"
        assert_security_headers(response)

    def test_absent_when_the_trusted_proxy_says_http(self, behind_trusted_proxy: str) -> None:
        response = httpx.get(
            behind_trusted_proxy + "/healthz", headers={"X-Forwarded-Proto": "http"}
        )
        assert HSTS not in response.headers

    def test_absent_when_an_untrusted_peer_claims_https(self, behind_untrusted_peer: str) -> None:
        response = httpx.get(
            behind_untrusted_peer + "/healthz", headers={"X-Forwarded-Proto": "https"}
        )
        assert response.status_code == 200
        assert HSTS not in response.headers
        assert_security_headers(response)


def test_no_hsts_in_dev_mode(client: TestClient) -> None:
    response = client.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert HSTS not in response.headers


# --------------------------------------------------------------------------- the middleware alone


async def _ok(scope: dict[str, Any], receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def _call(middleware: AuthSvcMiddleware, **scope: Any) -> dict[bytes, bytes]:
    import asyncio

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    full = {
        "type": "http",
        "method": "GET",
        "path": "/healthz",
        "scheme": "http",
        "headers": [],
        "client": ("127.0.0.1", 5000),
        **scope,
    }
    asyncio.run(middleware(full, receive, send))
    return dict(sent[0]["headers"])


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ({}, False),
        ({"scheme": "https"}, True),  # TLS ended at uvicorn itself
        ({"headers": [(b"x-forwarded-proto", b"https")]}, True),
        ({"headers": [(b"x-forwarded-proto", b"HTTPS, http")]}, True),  # the proxy's own hop
        ({"headers": [(b"x-forwarded-proto", b"http")]}, False),
        ({"headers": [(b"x-forwarded-proto", b"https")], "client": ("203.0.113.7", 5)}, False),
        ({"headers": [(b"x-forwarded-proto", b"https")], "client": None}, False),
    ],
)
def test_middleware_hsts_decision(scope: dict[str, Any], expected: bool) -> None:
    middleware = AuthSvcMiddleware(
        _ok, max_body_bytes=1024, hsts=True, trusted_proxies=parse_networks(["127.0.0.1/32"])
    )
    headers = _call(middleware, **scope)
    assert (b"strict-transport-security" in headers) is expected, headers
    assert headers[b"x-content-type-options"] == b"nosniff"
    assert headers[b"referrer-policy"] == b"no-referrer"


def test_middleware_without_trusted_proxies_believes_no_header() -> None:
    middleware = AuthSvcMiddleware(_ok, max_body_bytes=1024, hsts=True)
    headers = _call(middleware, headers=[(b"x-forwarded-proto", b"https")])
    assert b"strict-transport-security" not in headers
