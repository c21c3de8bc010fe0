"""The OAuth part against a real, standards-compliant authorization server: oidc-provider
standing in for Cognito's hosted UI (same /oauth2 paths, PKCE S256 required, the client
authenticated with HTTP Basic as Cognito's confidential clients are).

The app is the real one over TestClient; the browser is an httpx client that follows the
provider's redirects and hands authsvc's callback URL to the app, cookie included.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from authsvc.audit.models import AuditEvent
from authsvc.cognito.tokens import JWKSCache
from authsvc.federation.endpoints import BROWSER_COOKIE
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.federation.conftest import (
    APP_URI,
    CALLBACK_URL,
    NATIVE_URI,
    PUBLIC_CLIENT_ID,
    OpenIdProvider,
)
from tests.federation.support import (
    callback,
    follow_until,
    handoff_code,
    path_of,
    pkce_pair,
    start,
)
from tests.helpers import assert_problem


def op_app(cognito, database_url, op: OpenIdProvider, **overrides: Any) -> TestClient:  # type: ignore[no-untyped-def]
    settings = make_settings(
        cognito,
        database_url,
        federation_domain_url=op.issuer,
        federation_providers=["Google", "Corp:saml"],
        federation_callback_url=CALLBACK_URL,
        federation_redirect_uris=[APP_URI, NATIVE_URI],
        cognito_jwks_url=f"{op.issuer}/.well-known/jwks.json",
        cors_origins=["http://app.example.test"],
        **overrides,
    )
    app = create_app(settings)
    # The provider signs as itself: the verifier trusts its issuer here, as it trusts the
    # user pool's in production (the claims it checks are Cognito's, added by server.js).
    app.state.authsvc.verifier.issuer = op.issuer
    app.state.authsvc.verifier.jwks = JWKSCache(f"{op.issuer}/.well-known/jwks.json")
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(cognito, database_url, op: OpenIdProvider) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    # The confidential client: authsvc authenticates with HTTP Basic, as Cognito expects.
    with op_app(cognito, database_url, op, cognito_client_secret=op.client_secret) as c:
        yield c


def sign_in_at_op(op: OpenIdProvider, authorization_url: str, **interaction: str) -> str:
    """The browser at the provider: authorize, the login page, back to authsvc's callback."""
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        response = browser.get(authorization_url)
        assert response.status_code in (302, 303), response.text
        login = str(response.url.join(response.headers["location"]))
        assert login.startswith(f"{op.issuer}/interaction/"), login
        return follow_until(browser, f"{login}?{urlencode(interaction)}", CALLBACK_URL)


def web_flow(client: TestClient, op: OpenIdProvider, login: str = "alice") -> tuple[str, str]:
    url, nonce = start(client, "google", APP_URI)
    back = sign_in_at_op(op, url, login=login)
    return back, nonce


class TestPublicClient:
    def test_web_flow_without_a_client_secret(
        self, cognito, database_url, op: OpenIdProvider
    ) -> None:  # type: ignore[no-untyped-def]
        # An app client without a secret: no Basic auth, client_id in the body.
        with op_app(
            cognito,
            database_url,
            op,
            cognito_client_id=PUBLIC_CLIENT_ID,
            cognito_client_secret=None,  # make_settings gives the pool client's secret
        ) as public:
            url, nonce = start(public, "google", APP_URI)
            assert f"client_id={PUBLIC_CLIENT_ID}" in url
            back = sign_in_at_op(op, url, login="dora")
            code = handoff_code(callback(public, back, nonce), APP_URI)
            tokens = public.post("/v1/auth/federation/exchange", json={"handoff_code": code})
            assert tokens.status_code == 200, tokens.text
            bearer = {"Authorization": f"Bearer {tokens.json()['access_token']}"}
            assert public.get("/v1/auth/session", headers=bearer).json()["sub"] == "dora"


class TestConcurrency:
    def test_one_handoff_code_is_exchanged_once(
        self, client: TestClient, op: OpenIdProvider
    ) -> None:
        back, nonce = web_flow(client, op)
        code = handoff_code(callback(client, back, nonce), APP_URI)
        with ThreadPoolExecutor(max_workers=8) as pool:
            answers = list(
                pool.map(
                    lambda _: (
                        client.post(
                            "/v1/auth/federation/exchange", json={"handoff_code": code}
                        ).status_code
                    ),
                    range(8),
                )
            )
        assert sorted(answers) == [200] + [400] * 7


class TestProviders:
    def test_lists_configured(self, client: TestClient) -> None:
        response = client.get("/v1/auth/federation/providers")
        assert response.status_code == 200
        assert response.json() == {
            "items": [{"name": "Google", "kind": "google"}, {"name": "Corp", "kind": "saml"}]
        }


class TestStart:
    def test_authorization_url(self, client: TestClient, op: OpenIdProvider) -> None:
        url, _ = start(client, "Google", APP_URI)
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{op.issuer}/oauth2/authorize"
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        assert query["identity_provider"] == "Google"
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert query["redirect_uri"] == CALLBACK_URL
        # aws.cognito.signin.user.admin: Cognito's user APIs (/v1/me) refuse tokens without it.
        assert query["scope"] == "openid email profile aws.cognito.signin.user.admin"
        assert query["client_id"] == op.client_id
        assert len(query["state"]) >= 43 and len(query["code_challenge"]) == 43
        assert "code_verifier" not in query

    def test_unknown_provider(self, client: TestClient) -> None:
        response = client.post("/v1/auth/federation/myspace/start", json={"redirect_uri": APP_URI})
        assert_problem(response, 404, "unknown_provider")

    def test_foreign_redirect_uri(self, client: TestClient) -> None:
        response = client.post(
            "/v1/auth/federation/google/start",
            json={"redirect_uri": "https://evil.example/steal"},
        )
        assert_problem(response, 400, "redirect_uri_not_allowed")


class TestWebFlow:
    def test_start_authorize_callback_exchange(
        self, client: TestClient, op: OpenIdProvider
    ) -> None:
        back, nonce = web_flow(client, op, login="alice")
        response = callback(client, back, nonce)
        assert response.headers["cache-control"] == "no-store"
        code = handoff_code(response, APP_URI)
        exchanged = client.post("/v1/auth/federation/exchange", json={"handoff_code": code})
        assert exchanged.status_code == 200, exchanged.text
        assert exchanged.headers["cache-control"] == "no-store"
        tokens = exchanged.json()
        assert tokens["kind"] == "tokens" and tokens["refresh_token"]
        # The access token works as an authsvc session (verifier, revocation ledger).
        session = client.get(
            "/v1/auth/session", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert session.status_code == 200, session.text
        assert session.json()["sub"] == "alice"
        assert session.json()["client_id"] == op.client_id

    def test_audit_names_the_subject_by_username(
        self, client: TestClient, op: OpenIdProvider
    ) -> None:
        # As every event: target is the pool's username, the provider only in the detail.
        login = f"fed-{uuid.uuid4().hex[:8]}"
        back, nonce = web_flow(client, op, login=login)
        handoff_code(callback(client, back, nonce), APP_URI)
        state = client.app.state.authsvc  # type: ignore[attr-defined]
        state.audit.flush()
        with state.db.sessions() as session:
            rows = session.scalars(select(AuditEvent).where(AuditEvent.actor == login)).all()
        assert [(r.action, r.target, r.target_email, r.detail) for r in rows] == [
            ("federated_sign_in", login, f"{login}@op.example", {"provider": "Google"})
        ]

    def test_cookie_transport(self, client: TestClient, op: OpenIdProvider) -> None:
        back, nonce = web_flow(client, op, login="bob")
        code = handoff_code(callback(client, back, nonce), APP_URI)
        exchanged = client.post(
            "/v1/auth/federation/exchange",
            json={"handoff_code": code},
            headers={"X-Token-Transport": "cookie"},
        )
        assert exchanged.status_code == 200, exchanged.text
        assert exchanged.json()["refresh_token"] is None
        assert "__Host-authsvc_refresh=" in exchanged.headers["set-cookie"]

    def test_state_replayed(self, client: TestClient, op: OpenIdProvider) -> None:
        back, nonce = web_flow(client, op)
        handoff_code(callback(client, back, nonce), APP_URI)
        assert_problem(callback(client, back, nonce), 400, "invalid_state")

    def test_state_from_another_browser(self, client: TestClient, op: OpenIdProvider) -> None:
        back, _ = web_flow(client, op)
        assert_problem(callback(client, back, None), 400, "invalid_state")
        assert_problem(callback(client, back, "someone-elses-cookie"), 400, "invalid_state")

    def test_forged_state(self, client: TestClient, op: OpenIdProvider) -> None:
        back, nonce = web_flow(client, op)
        parts = urlsplit(back)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        query["state"] = "made-up"
        forged = f"{CALLBACK_URL}?{urlencode(query)}"
        assert_problem(callback(client, forged, nonce), 400, "invalid_state")
        assert_problem(callback(client, CALLBACK_URL, nonce), 400, "invalid_state")

    def test_handoff_code_reused(self, client: TestClient, op: OpenIdProvider) -> None:
        back, nonce = web_flow(client, op)
        code = handoff_code(callback(client, back, nonce), APP_URI)
        first = client.post("/v1/auth/federation/exchange", json={"handoff_code": code})
        assert first.status_code == 200
        second = client.post("/v1/auth/federation/exchange", json={"handoff_code": code})
        assert_problem(second, 400, "invalid_handoff_code")

    def test_unknown_handoff_code(self, client: TestClient) -> None:
        response = client.post("/v1/auth/federation/exchange", json={"handoff_code": "nope"})
        assert_problem(response, 400, "invalid_handoff_code")

    def test_provider_denied(self, client: TestClient, op: OpenIdProvider) -> None:
        url, nonce = start(client, "google", APP_URI)
        back = sign_in_at_op(op, url, deny="1")
        assert "error=access_denied" in back
        body = assert_problem(callback(client, back, nonce), 400, "provider_denied")
        assert body["provider_error"] == "access_denied"

    def test_code_replayed_at_the_provider(self, client: TestClient, op: OpenIdProvider) -> None:
        # A second state cannot reuse the first sign-in's code: the provider refuses it.
        back, nonce = web_flow(client, op)
        handoff_code(callback(client, back, nonce), APP_URI)
        url2, nonce2 = start(client, "google", APP_URI)
        state2 = parse_qs(urlsplit(url2).query)["state"][0]
        code1 = parse_qs(urlsplit(back).query)["code"][0]
        replay = f"{CALLBACK_URL}?{urlencode({'code': code1, 'state': state2})}"
        assert_problem(callback(client, replay, nonce2), 400, "invalid_grant")


def native_code(op: OpenIdProvider, challenge: str, login: str = "carol") -> str:
    """A native app's own PKCE run at the provider (Cognito's /oauth2/authorize)."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": op.client_id,
            "redirect_uri": NATIVE_URI,
            "identity_provider": "Google",
            "scope": "openid email profile",
            "state": "app-state",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
    )
    with httpx.Client(follow_redirects=False, timeout=10) as browser:
        response = browser.get(f"{op.issuer}/oauth2/authorize?{query}")
        login_url = str(response.url.join(response.headers["location"]))
        back = follow_until(browser, f"{login_url}?{urlencode({'login': login})}", NATIVE_URI)
    return parse_qs(urlsplit(back).query)["code"][0]


class TestNativeFlow:
    def test_code_and_verifier(self, client: TestClient, op: OpenIdProvider) -> None:
        verifier, challenge = pkce_pair()
        code = native_code(op, challenge)
        response = client.post(
            "/v1/auth/federation/token",
            json={"code": code, "code_verifier": verifier, "redirect_uri": NATIVE_URI},
        )
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        tokens: dict[str, Any] = response.json()
        session = client.get(
            "/v1/auth/session", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert session.json()["sub"] == "carol"

    def test_tampered_verifier(self, client: TestClient, op: OpenIdProvider) -> None:
        verifier, challenge = pkce_pair()
        code = native_code(op, challenge)
        tampered = verifier[:-1] + ("A" if verifier[-1] != "A" else "B")
        response = client.post(
            "/v1/auth/federation/token",
            json={"code": code, "code_verifier": tampered, "redirect_uri": NATIVE_URI},
        )
        assert_problem(response, 400, "invalid_grant")

    def test_foreign_redirect_uri(self, client: TestClient, op: OpenIdProvider) -> None:
        verifier, challenge = pkce_pair()
        code = native_code(op, challenge)
        response = client.post(
            "/v1/auth/federation/token",
            json={
                "code": code,
                "code_verifier": verifier,
                "redirect_uri": "https://evil.example/cb",
            },
        )
        assert_problem(response, 400, "redirect_uri_not_allowed")

    def test_redirect_uri_other_than_the_codes(
        self, client: TestClient, op: OpenIdProvider
    ) -> None:
        verifier, challenge = pkce_pair()
        code = native_code(op, challenge)
        response = client.post(
            "/v1/auth/federation/token",
            json={"code": code, "code_verifier": verifier, "redirect_uri": APP_URI},
        )
        assert_problem(response, 400, "invalid_grant")

    def test_short_verifier_is_a_validation_error(self, client: TestClient) -> None:
        response = client.post(
            "/v1/auth/federation/token",
            json={"code": "x", "code_verifier": "short", "redirect_uri": NATIVE_URI},
        )
        assert_problem(response, 422, "validation_error")


class TestOpenApi:
    @pytest.mark.parametrize(
        ("method", "path", "codes"),
        [
            (
                "post",
                "/v1/auth/federation/{provider}/start",
                ["unknown_provider", "redirect_uri_not_allowed"],
            ),
            (
                "get",
                "/v1/auth/federation/callback",
                ["invalid_state", "provider_denied", "invalid_grant"],
            ),
            ("post", "/v1/auth/federation/exchange", ["invalid_handoff_code"]),
            ("post", "/v1/auth/federation/token", ["redirect_uri_not_allowed", "invalid_grant"]),
            ("post", "/v1/me/aws-credentials", ["identity_pool_refused", "invalid_token"]),
        ],
    )
    def test_each_error_code_is_documented(
        self, client: TestClient, method: str, path: str, codes: list[str]
    ) -> None:
        operation = client.get("/openapi.json").json()["paths"][path][method]
        documented = " ".join(
            r.get("description", "") for s, r in operation["responses"].items() if s[0] in "45"
        )
        for code in codes:
            assert f"{code}" in documented, (path, code, documented)


class TestBrowserErrors:
    """A browser back from the hosted UI with a failed sign-in goes back to the app with
    #error=…; API callers and unknown states keep the problem response."""

    HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}

    def browser_callback(self, client: TestClient, url: str, nonce: str | None) -> Any:
        headers = {**self.HTML, **({"Cookie": f"{BROWSER_COOKIE}={nonce}"} if nonce else {})}
        return client.get(path_of(url), headers=headers, follow_redirects=False)

    def app_error(self, response: Any) -> dict[str, str]:
        assert response.status_code == 302, response.text
        location = response.headers["location"]
        assert location.startswith(APP_URI + "#"), location
        assert "handoff_code" not in location and "access_token" not in location
        assert f"{BROWSER_COOKIE}=" in response.headers["set-cookie"]  # cleared
        assert response.headers["cache-control"] == "no-store"
        return {k: v[0] for k, v in parse_qs(urlsplit(location).fragment).items()}

    def test_provider_denied(self, client: TestClient, op: OpenIdProvider) -> None:
        url, nonce = start(client, "google", APP_URI)
        back = sign_in_at_op(op, url, deny="1")
        fragment = self.app_error(self.browser_callback(client, back, nonce))
        assert fragment["error"] == "provider_denied"
        assert fragment["error_description"]
        # The state was used up: the same URL again is an unknown state, and with no app
        # to return to, a problem response even for a browser.
        again = self.browser_callback(client, back, nonce)
        assert_problem(again, 400, "invalid_state")

    def test_another_browser(self, client: TestClient, op: OpenIdProvider) -> None:
        back, _ = web_flow(client, op)
        fragment = self.app_error(self.browser_callback(client, back, "someone-elses-cookie"))
        assert fragment["error"] == "invalid_state"

    def test_code_refused(self, client: TestClient, op: OpenIdProvider) -> None:
        back, nonce = web_flow(client, op)
        handoff_code(callback(client, back, nonce), APP_URI)
        url2, nonce2 = start(client, "google", APP_URI)
        state2 = parse_qs(urlsplit(url2).query)["state"][0]
        code1 = parse_qs(urlsplit(back).query)["code"][0]
        replay = f"{CALLBACK_URL}?{urlencode({'code': code1, 'state': state2})}"
        fragment = self.app_error(self.browser_callback(client, replay, nonce2))
        assert fragment["error"] == "invalid_grant"

    def test_forged_state_stays_a_problem(self, client: TestClient) -> None:
        forged = f"{CALLBACK_URL}?{urlencode({'code': 'x', 'state': 'made-up'})}"
        assert_problem(self.browser_callback(client, forged, "nonce"), 400, "invalid_state")

    def test_api_caller_gets_the_problem(self, client: TestClient, op: OpenIdProvider) -> None:
        url, nonce = start(client, "google", APP_URI)
        back = sign_in_at_op(op, url, deny="1")
        response = client.get(
            path_of(back),
            headers={"Cookie": f"{BROWSER_COOKIE}={nonce}", "Accept": "application/json"},
            follow_redirects=False,
        )
        assert_problem(response, 400, "provider_denied")


def upstream_refresh(token: str) -> str:
    """The provider's own refresh token inside authsvc's (``rt1.<user>.<token>``)."""
    return token[len("rt1.") :].partition(".")[2] if token.startswith("rt1.") else token


class TestSignOut:
    def op_refresh(self, op: OpenIdProvider, refresh_token: str) -> Any:
        return httpx.post(
            f"{op.issuer}/oauth2/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
            auth=(op.client_id, op.client_secret),
            timeout=10,
        )

    def session(self, client: TestClient, op: OpenIdProvider, login: str) -> dict[str, Any]:
        back, nonce = web_flow(client, op, login=login)
        code = handoff_code(callback(client, back, nonce), APP_URI)
        tokens = client.post("/v1/auth/federation/exchange", json={"handoff_code": code})
        assert tokens.status_code == 200, tokens.text
        body: dict[str, Any] = tokens.json()
        return body

    def test_sign_out_revokes_the_refresh_token_at_the_provider(
        self, client: TestClient, op: OpenIdProvider
    ) -> None:
        signed_out = self.session(client, op, "erin")
        kept = self.session(client, op, "frank")
        bearer = {"Authorization": f"Bearer {signed_out['access_token']}"}
        response = client.post(
            "/v1/auth/sign-out", headers=bearer, json={"refresh_token": signed_out["refresh_token"]}
        )
        assert response.status_code == 204, response.text
        refused = self.op_refresh(op, upstream_refresh(signed_out["refresh_token"]))
        assert refused.status_code == 400 and refused.json()["error"] == "invalid_grant"
        # Only that session's token: another user's still works at the provider.
        assert self.op_refresh(op, upstream_refresh(kept["refresh_token"])).status_code == 200

    def test_unreachable_revocation_is_retried(
        self, cognito, database_url, op: OpenIdProvider
    ) -> None:  # type: ignore[no-untyped-def]
        with op_app(cognito, database_url, op, cognito_client_secret=op.client_secret) as app:
            tokens = self.session(app, op, "gina")
            state = app.app.state.authsvc  # type: ignore[attr-defined]
            real_domain = state.federation.settings.federation_domain_url
            # The revocation endpoint is down during the sign-out...
            state.federation.settings = state.federation.settings.model_copy(
                update={"federation_domain_url": "http://127.0.0.1:9"}
            )
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            response = app.post(
                "/v1/auth/sign-out", headers=bearer, json={"refresh_token": tokens["refresh_token"]}
            )
            assert response.status_code == 204, response.text
            upstream = upstream_refresh(tokens["refresh_token"])
            assert self.op_refresh(op, upstream).status_code == 200  # not revoked yet
            # ...and back: the queued revocation goes through.
            state.federation.settings = state.federation.settings.model_copy(
                update={"federation_domain_url": real_domain}
            )
            state.auth.retry_pending_sign_outs()
            assert self.op_refresh(op, upstream).json()["error"] == "invalid_grant"
