"""The middleware answers GET /healthz and GET /v1/auth/session for an already verified token
before routing (issue 12). It must answer exactly what the routes answer — same body, same
headers — and leave every other case (unknown, revoked or malformed tokens, cross-origin
requests) to the routes."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import signed_in_user

SESSION = "/v1/auth/session"
VARYING = {"x-request-id", "date"}


def _comparable(response: Any) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in VARYING}
    return response.status_code, response.content, headers


def _routed(client: TestClient, token: str) -> Any:
    """The same request answered by the route: the verifier's cache forgets the token."""
    verifier = client.app.state.authsvc.verifier  # type: ignore[attr-defined]
    with verifier._cache_lock:
        verifier._cache.pop(token, None)
    return client.get(SESSION, headers={"Authorization": f"Bearer {token}"})


class TestSessionFastPath:
    def test_answers_like_the_route(self, client: TestClient, outbox: Any) -> None:
        _, tokens = signed_in_user(client, outbox)
        routed = _routed(client, tokens.access_token)
        fast = client.get(SESSION, headers=tokens.bearer)  # now cached: answered early
        assert routed.status_code == 200, routed.text
        assert _comparable(fast) == _comparable(routed)
        assert fast.headers["cache-control"] == "no-store"
        assert fast.headers["x-content-type-options"] == "nosniff"
        assert fast.headers["x-request-id"] != routed.headers["x-request-id"]

    def test_a_revoked_cached_token_is_refused(self, client: TestClient, outbox: Any) -> None:
        _, tokens = signed_in_user(client, outbox)
        assert client.get(SESSION, headers=tokens.bearer).status_code == 200  # cached now
        assert client.post("/v1/auth/sign-out", headers=tokens.bearer).status_code == 204
        refused = client.get(SESSION, headers=tokens.bearer)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_token"

    @pytest.mark.parametrize(
        "authorization", ["", "Bearer", "Basic abc", "Bearer not-a-token", "bearer  x.y.z"]
    )
    def test_anything_else_goes_to_the_route(self, client: TestClient, authorization: str) -> None:
        headers = {"Authorization": authorization} if authorization else {}
        response = client.get(SESSION, headers=headers)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"].startswith("application/problem+json")

    def test_cross_origin_requests_keep_their_cors_headers(
        self, cognito: Any, database_url: str
    ) -> None:
        origin = "http://app.example.test"
        settings = make_settings(cognito, database_url, cors_origins=[origin])
        with TestClient(create_app(settings)) as client:
            outbox = client.app.state.authsvc.outbox  # type: ignore[attr-defined]
            _, tokens = signed_in_user(client, outbox)
            assert client.get(SESSION, headers=tokens.bearer).status_code == 200  # cached
            response = client.get(SESSION, headers={**tokens.bearer, "Origin": origin})
            assert response.status_code == 200, response.text
            assert response.headers["access-control-allow-origin"] == origin


class TestHealthzFastPath:
    def test_answers_like_the_route(self, client: TestClient) -> None:
        fast = client.get("/healthz")
        routed = client.get("/healthz", headers={"Origin": "http://elsewhere.test"})
        assert fast.status_code == 200 and fast.json() == {"status": "ok"}
        assert _comparable(fast) == _comparable(routed)
        assert "cache-control" not in fast.headers  # not an API response
