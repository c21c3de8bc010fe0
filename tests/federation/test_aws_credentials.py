"""POST /v1/me/aws-credentials against moto's cognito-identity over HTTP (server mode).

moto's GetId checks neither the pool nor the login (it answers an unknown pool with a 500);
the dev layer (authsvc/dev/identity.py) applies Cognito's refusals, and these tests cover
both the success and each refusal.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from authsvc.cognito.gateway import new_client
from authsvc.dev.emulator import ensure_identity_pool
from authsvc.main import create_app
from tests.cognito.test_tokens import MOTO_PRIVATE_KEY
from tests.conftest import make_settings
from tests.helpers import Tokens, assert_problem, signed_in_user


def identity_client(cognito) -> Any:  # type: ignore[no-untyped-def]
    return new_client(
        "cognito-identity",
        region_name=cognito.pool.region,
        endpoint_url=cognito.endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )


def make_client(cognito, database_url, identity_pool_id: str | None) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(
        create_app(make_settings(cognito, database_url, identity_pool_id=identity_pool_id)),
        raise_server_exceptions=False,
    )


@pytest.fixture(scope="module")
def client(cognito, database_url) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with make_client(
        cognito, database_url, ensure_identity_pool(cognito.client, cognito.pool)
    ) as c:
        yield c


@pytest.fixture
def user(client: TestClient) -> Tokens:
    outbox = client.app.state.authsvc.outbox  # type: ignore[attr-defined]
    return signed_in_user(client, outbox)[1]


def resign(token: str, **changes: Any) -> str:
    """The same token's claims with ``changes``, signed with moto's own key (kid "dummy")."""
    claims = jwt.decode(token, options={"verify_signature": False})
    claims.update(changes)
    return jwt.encode(claims, MOTO_PRIVATE_KEY, algorithm="RS256", headers={"kid": "dummy"})


def credentials(client: TestClient, access_token: str, id_token: str) -> Any:
    return client.post(
        "/v1/me/aws-credentials",
        headers={"Authorization": f"Bearer {access_token}"},
        json={"id_token": id_token},
    )


class TestIssued:
    def test_credentials(
        self, client: TestClient, user: Tokens, caplog: pytest.LogCaptureFixture
    ) -> None:
        with caplog.at_level(logging.INFO):
            response = credentials(client, user.access_token, user.id_token)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert set(body) == {
            "identity_id",
            "access_key_id",
            "secret_access_key",
            "session_token",
            "expiration",
        }
        assert body["identity_id"].startswith(
            f"{client.app.state.authsvc.settings.cognito_region}:"
        )  # type: ignore[attr-defined]
        assert body["access_key_id"] and body["secret_access_key"] and body["session_token"]
        # Never logged with values.
        logged = "\n".join(r.getMessage() + str(r.__dict__) for r in caplog.records)
        assert body["secret_access_key"] not in logged
        assert body["session_token"] not in logged


class TestRefused:
    def test_expired_access_token(self, client: TestClient, user: Tokens) -> None:
        now = int(time.time())
        expired = resign(user.access_token, iat=now - 7200, exp=now - 60)
        body = assert_problem(credentials(client, expired, user.id_token), 401, "invalid_token")
        assert "expired" in body["detail"].lower()

    def test_expired_id_token(self, client: TestClient, user: Tokens) -> None:
        now = int(time.time())
        expired = resign(user.id_token, iat=now - 7200, exp=now - 60)
        body = assert_problem(credentials(client, user.access_token, expired), 401, "invalid_token")
        assert "expired" in body["detail"].lower()

    def test_another_users_id_token(self, client: TestClient, user: Tokens) -> None:
        outbox = client.app.state.authsvc.outbox  # type: ignore[attr-defined]
        other = signed_in_user(client, outbox)[1]
        response = credentials(client, user.access_token, other.id_token)
        assert_problem(response, 401, "invalid_token")

    def test_access_token_as_id_token(self, client: TestClient, user: Tokens) -> None:
        response = credentials(client, user.access_token, user.access_token)
        assert_problem(response, 401, "invalid_token")

    def test_no_bearer(self, client: TestClient, user: Tokens) -> None:
        response = client.post("/v1/me/aws-credentials", json={"id_token": user.id_token})
        assert_problem(response, 401, "not_authenticated")

    def test_pool_bound_to_another_client(self, cognito, database_url, user: Tokens) -> None:  # type: ignore[no-untyped-def]
        created = identity_client(cognito).create_identity_pool(
            IdentityPoolName="other_app",
            AllowUnauthenticatedIdentities=False,
            CognitoIdentityProviders=[
                {
                    "ProviderName": f"cognito-idp.{cognito.pool.region}.amazonaws.com/"
                    f"{cognito.pool.user_pool_id}",
                    "ClientId": "some-other-app-client",
                }
            ],
        )
        with make_client(cognito, database_url, created["IdentityPoolId"]) as other:
            response = credentials(other, user.access_token, user.id_token)
        assert_problem(response, 403, "identity_pool_refused")

    def test_unknown_pool(self, cognito, database_url, user: Tokens) -> None:  # type: ignore[no-untyped-def]
        unknown = f"{cognito.pool.region}:00000000-0000-0000-0000-000000000000"
        with make_client(cognito, database_url, unknown) as other:
            response = credentials(other, user.access_token, user.id_token)
        assert_problem(response, 403, "identity_pool_refused")

    def test_not_configured(self, cognito, database_url, user: Tokens) -> None:  # type: ignore[no-untyped-def]
        with make_client(cognito, database_url, None) as other:
            response = credentials(other, user.access_token, user.id_token)
        assert_problem(response, 404, "federation_not_configured")
