"""Drive the federation flows the way a browser and a native app do, over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import socket
from http.cookies import SimpleCookie
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

import httpx

BROWSER_COOKIE = "__Host-authsvc_federation"


class Client(Protocol):
    """httpx.Client or FastAPI's TestClient: what the flows need of either."""

    def get(self, url: str, **kwargs: Any) -> Any: ...
    def post(self, url: str, **kwargs: Any) -> Any: ...


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


def set_cookie_value(response: Any, name: str) -> str | None:
    """The value a browser stores from Set-Cookie (httpx keeps Secure cookies off http://,
    which a browser does not do for 127.0.0.1)."""
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        if name in jar:
            return jar[name].value
    return None


def start(client: Client, provider: str, redirect_uri: str) -> tuple[str, str]:
    response = client.post(
        f"/v1/auth/federation/{provider}/start", json={"redirect_uri": redirect_uri}
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    nonce = set_cookie_value(response, BROWSER_COOKIE)
    assert nonce, response.headers
    cookie = response.headers["set-cookie"]
    assert "HttpOnly" in cookie and "Secure" in cookie and "samesite=lax" in cookie.lower()
    return response.json()["authorization_url"], nonce


def follow_until(browser: httpx.Client, url: str, prefix: str, *, limit: int = 10) -> str:
    """GET and follow redirects until one points at ``prefix``; that URL is returned."""
    for _ in range(limit):
        response = browser.get(url)
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        location = response.headers["location"]
        url = location if location.startswith("http") else str(response.url.join(location))
        if url.startswith(prefix):
            return url
    raise AssertionError(f"never redirected to {prefix}")


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def callback(client: Client, callback_url: str, nonce: str | None) -> Any:
    headers = {"Cookie": f"{BROWSER_COOKIE}={nonce}"} if nonce else {}
    return client.get(path_of(callback_url), headers=headers, follow_redirects=False)


def handoff_code(response: Any, app_uri: str) -> str:
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith(app_uri + "#"), location
    assert "access_token" not in location and "id_token" not in location
    fragment = parse_qs(urlsplit(location).fragment)
    return fragment["handoff_code"][0]


def form_fields(page: str) -> dict[str, str]:
    return dict(re.findall(r"<input type='hidden' name='([^']+)' value='([^']*)'>", page))
