"""The dev hosted-UI stand-in in-process (the app calls it over its own TestClient): its
/oauth2/revoke, and a federated sign-in for an email that already has a password account."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from authsvc.dev.hosted_ui import mount_hosted_ui
from authsvc.main import create_app
from tests.conftest import Emulator, make_settings
from tests.federation.support import callback, form_fields, handoff_code, start
from tests.helpers import PASSWORD, assert_problem, confirmed_user, sign_in

BASE = "http://testserver"
SPA = f"{BASE}/dev/spa/"
STANDIN = f"{BASE}/dev/cognito"


@pytest.fixture(scope="module")
def client(cognito: Emulator, database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        cognito,
        database_url,
        federation_domain_url=STANDIN,
        federation_callback_url=f"{BASE}/v1/auth/federation/callback",
        federation_providers=["Google"],
        federation_redirect_uris=[SPA],
    )
    app = create_app(settings)
    mount_hosted_ui(app, app.state.authsvc)
    with TestClient(app, raise_server_exceptions=False) as c:
        app.state.authsvc.federation.http = c  # authsvc reaches the stand-in over "HTTP"
        yield c


def choose(client: TestClient, authorization_url: str, identity: str) -> str:
    page = client.get(authorization_url)
    assert page.status_code == 200, page.text
    response = client.post(
        f"{STANDIN}/oauth2/authorize",
        data={**form_fields(page.text), "identity": identity},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def federated(client: TestClient, identity: str) -> dict[str, Any]:
    url, nonce = start(client, "google", SPA)
    code = handoff_code(callback(client, choose(client, url, identity), nonce), SPA)
    response = client.post("/v1/auth/federation/exchange", json={"handoff_code": code})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def test_revoke_ends_that_refresh_token(client: TestClient) -> None:
    tokens = federated(client, "0")
    refresh = {"refresh_token": tokens["refresh_token"]}
    assert client.post("/v1/auth/refresh", json=refresh).status_code == 200
    unauthenticated = client.post(f"{STANDIN}/oauth2/revoke", data={"token": "x"})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json() == {"error": "invalid_client"}
    settings = client.app.state.authsvc.settings  # type: ignore[attr-defined]
    # As the app client authenticates at Cognito: HTTP Basic with its secret, if it has one.
    secret = settings.client_secret
    upstream = tokens["refresh_token"]
    if upstream.startswith("rt1."):  # authsvc's wrapping (the username, for SECRET_HASH)
        upstream = upstream[len("rt1.") :].partition(".")[2]
    revoked = client.post(
        f"{STANDIN}/oauth2/revoke",
        data={"token": upstream}
        if secret
        else {"token": upstream, "client_id": settings.cognito_client_id},
        auth=(settings.cognito_client_id, secret) if secret else None,
    )
    assert revoked.status_code == 200, revoked.text
    assert_problem(client.post("/v1/auth/refresh", json=refresh), 401, "invalid_token")


def test_federated_sign_in_for_a_password_account_is_refused_not_linked(
    client: TestClient,
) -> None:
    outbox = client.app.state.authsvc.outbox  # type: ignore[attr-defined]
    # Alan registered alan@google.example with a password before trying "Sign in with Google".
    email = confirmed_user(client, outbox, email="alan@google.example")
    url, nonce = start(client, "google", SPA)
    back = choose(client, url, "1")
    query = parse_qs(urlsplit(back).query)
    assert query["error"] == ["invalid_request"] and "code" not in query
    assert "already has a password account" in query["error_description"][0]
    body = assert_problem(callback(client, back, nonce), 400, "provider_denied")
    assert body["provider_error"] == "invalid_request"
    # The password account is untouched: same password, no federated group.
    tokens = sign_in(client, email, PASSWORD)
    session = client.get("/v1/auth/session", headers=tokens.bearer).json()
    assert not [g for g in session["groups"] if g.endswith("_Google")]


def test_a_federated_user_comes_back_to_the_same_account(client: TestClient) -> None:
    first = client.get(
        "/v1/auth/session",
        headers={"Authorization": f"Bearer {federated(client, '0')['access_token']}"},
    ).json()
    second = client.get(
        "/v1/auth/session",
        headers={"Authorization": f"Bearer {federated(client, '0')['access_token']}"},
    ).json()
    assert first["sub"] == second["sub"]
    assert any(g.endswith("_Google") for g in first["groups"])
