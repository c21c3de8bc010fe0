"""The same flows against `authsvc dev` (a real subprocess): its stand-in for Cognito's hosted
UI at /dev/cognito/oauth2, reached by the service over HTTP through the production code path
(AUTHSVC_FEDERATION_DOMAIN_URL points at it), with tokens minted by the emulator's pool."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from tests.federation.support import (
    callback,
    form_fields,
    handoff_code,
    pkce_pair,
    start,
)
from tests.helpers import assert_problem
from tests.test_dev_cli import DevServer, _kill, _start_dev

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = _start_dev(tmp_path_factory.mktemp("federation-dev"))
    try:
        yield server
    finally:
        _kill(server.process)


@pytest.fixture
def api(dev: DevServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=dev.base_url, timeout=30) as client:
        yield client


def spa(dev: DevServer) -> str:
    return f"{dev.base_url}/dev/spa/"


def choose(authorization_url: str, identity: str) -> str:
    """The person at the stand-in's page picks an identity (or cancels)."""
    page = httpx.get(authorization_url, timeout=30)
    assert page.status_code == 200, page.text
    fields = form_fields(page.text)
    assert fields["identity_provider"]
    response = httpx.post(
        authorization_url.split("?")[0], data={**fields, "identity": identity}, timeout=30
    )
    assert response.status_code == 302, response.text
    return str(response.headers["location"])


def signed_in(api: httpx.Client, dev: DevServer, provider: str = "google") -> dict[str, Any]:
    url, nonce = start(api, provider, spa(dev))
    back = choose(url, "0")
    code = handoff_code(callback(api, back, nonce), spa(dev))
    response = api.post("/v1/auth/federation/exchange", json={"handoff_code": code})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


def test_providers_listed(api: httpx.Client) -> None:
    names = [p["name"] for p in api.get("/v1/auth/federation/providers").json()["items"]]
    assert names == ["Google", "Facebook", "LoginWithAmazon", "SignInWithApple"]


def test_web_flow_is_an_authsvc_session(api: httpx.Client, dev: DevServer) -> None:
    tokens = signed_in(api, dev)
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = api.get("/v1/me", headers=bearer)
    assert me.status_code == 200, me.text
    assert me.json()["email"] == "ada@google.example"
    assert me.json()["family_name"] == "Lovelace"
    refreshed = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    creds = api.post(
        "/v1/me/aws-credentials", headers=bearer, json={"id_token": tokens["id_token"]}
    )
    assert creds.status_code == 200, creds.text
    assert creds.headers["cache-control"] == "no-store"
    assert creds.json()["identity_id"]
    # Sign-out ends it like a password session: the revocation ledger refuses the token.
    assert api.post("/v1/auth/sign-out", headers=bearer).status_code == 204
    assert_problem(api.get("/v1/auth/session", headers=bearer), 401, "invalid_token")
    refused = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(refused, 401, "invalid_token")


def test_each_provider_signs_in(api: httpx.Client, dev: DevServer) -> None:
    for provider, email in [("facebook", "grace@facebook.example"), ("SignInWithApple", None)]:
        tokens = signed_in(api, dev, provider)
        me = api.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200
        if email:
            assert me.json()["email"] == email


def test_cancelled(api: httpx.Client, dev: DevServer) -> None:
    url, nonce = start(api, "google", spa(dev))
    back = choose(url, "cancel")
    assert_problem(callback(api, back, nonce), 400, "provider_denied")


def test_state_replay_and_handoff_reuse(api: httpx.Client, dev: DevServer) -> None:
    url, nonce = start(api, "google", spa(dev))
    back = choose(url, "1")
    code = handoff_code(callback(api, back, nonce), spa(dev))
    assert_problem(callback(api, back, nonce), 400, "invalid_state")
    assert api.post("/v1/auth/federation/exchange", json={"handoff_code": code}).status_code == 200
    again = api.post("/v1/auth/federation/exchange", json={"handoff_code": code})
    assert_problem(again, 400, "invalid_handoff_code")


def test_foreign_redirect_uri(api: httpx.Client) -> None:
    response = api.post(
        "/v1/auth/federation/google/start", json={"redirect_uri": "https://evil.example/"}
    )
    assert_problem(response, 400, "redirect_uri_not_allowed")


def native_code(dev: DevServer, challenge: str) -> str:
    settings_client_id = parse_qs(
        urlsplit(start(httpx.Client(base_url=dev.base_url), "google", spa(dev))[0]).query
    )["client_id"][0]
    query = urlencode(
        {
            "response_type": "code",
            "client_id": settings_client_id,
            "redirect_uri": spa(dev),
            "identity_provider": "Google",
            "scope": "openid email profile",
            "state": "app-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    back = choose(f"{dev.base_url}/dev/cognito/oauth2/authorize?{query}", "0")
    assert back.startswith(spa(dev)), back
    return parse_qs(urlsplit(back).query)["code"][0]


def test_native_flow_and_tampered_verifier(api: httpx.Client, dev: DevServer) -> None:
    verifier, challenge = pkce_pair()
    code = native_code(dev, challenge)
    tampered = api.post(
        "/v1/auth/federation/token",
        json={"code": code, "code_verifier": verifier[::-1], "redirect_uri": spa(dev)},
    )
    assert_problem(tampered, 400, "invalid_grant")
    # The failed attempt used the code up, as Cognito does: a new one is needed.
    verifier, challenge = pkce_pair()
    code = native_code(dev, challenge)
    response = api.post(
        "/v1/auth/federation/token",
        json={"code": code, "code_verifier": verifier, "redirect_uri": spa(dev)},
    )
    assert response.status_code == 200, response.text
    bearer = {"Authorization": f"Bearer {response.json()['access_token']}"}
    assert api.get("/v1/auth/session", headers=bearer).status_code == 200


def test_standin_refuses_unlisted_redirect(dev: DevServer) -> None:
    query = urlencode(
        {"response_type": "code", "client_id": "x", "redirect_uri": "https://evil.example/"}
    )
    page = httpx.get(f"{dev.base_url}/dev/cognito/oauth2/authorize?{query}", timeout=30)
    assert page.status_code == 400
