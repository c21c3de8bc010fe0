"""GET /v1/auth/session: who the bearer token belongs to, verified locally (DESIGN §3, §5)."""

from __future__ import annotations

from datetime import UTC, datetime

import jwt

from tests.helpers import assert_problem, sign_in, signed_in_user

SESSION = "/v1/auth/session"


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class TestSession:
    def test_session_matches_the_token(self, client, outbox, cognito):
        _, tokens = signed_in_user(client, outbox)
        response = client.get(SESSION, headers=tokens.bearer)
        assert response.status_code == 200, response.text
        body = response.json()
        claims = claims_of(tokens.access_token)

        assert set(body) == {
            "sub",
            "username",
            "groups",
            "scopes",
            "client_id",
            "issued_at",
            "expires_at",
        }
        assert body["sub"] == claims["sub"]
        assert body["username"] == claims["username"]
        assert body["groups"] == []
        assert body["scopes"] == claims["scope"].split()
        assert "aws.cognito.signin.user.admin" in body["scopes"]
        assert body["client_id"] == cognito.pool.client_id == claims["client_id"]
        assert parse(body["issued_at"]) == datetime.fromtimestamp(claims["iat"], UTC)
        assert parse(body["expires_at"]) == datetime.fromtimestamp(claims["exp"], UTC)

    def test_admin_group_appears_after_signing_in_again(self, client, outbox, cognito):
        email, tokens = signed_in_user(client, outbox)
        username = client.get(SESSION, headers=tokens.bearer).json()["username"]
        cognito.client.admin_add_user_to_group(
            UserPoolId=cognito.pool.user_pool_id, Username=username, GroupName="admin"
        )
        # The old token was minted before the membership: its claims do not change.
        assert client.get(SESSION, headers=tokens.bearer).json()["groups"] == []

        again = sign_in(client, email)
        response = client.get(SESSION, headers=again.bearer)
        assert response.status_code == 200, response.text
        assert "admin" in response.json()["groups"]
        assert response.json()["groups"] == claims_of(again.access_token)["cognito:groups"]

    def test_no_header_is_not_authenticated(self, client):
        response = client.get(SESSION)
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    def test_other_scheme_is_not_authenticated(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.get(SESSION, headers={"Authorization": f"Basic {tokens.access_token}"})
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    def test_garbage_token_is_invalid_token(self, client):
        response = client.get(SESSION, headers={"Authorization": "Bearer garbage.garbage.garbage"})
        assert_problem(response, 401, "invalid_token")
        assert response.headers["www-authenticate"] == 'Bearer error="invalid_token"'

    def test_id_token_is_not_an_access_token(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.get(SESSION, headers={"Authorization": f"Bearer {tokens.id_token}"})
        assert_problem(response, 401, "invalid_token")

    def test_tampered_token_is_invalid_token(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        header, payload, signature = tokens.access_token.split(".")
        assert b"signin.user.admin" in jwt.utils.base64url_decode(payload)
        forged = jwt.utils.base64url_encode(
            jwt.utils.base64url_decode(payload).replace(b"signin.user.admin", b"signin.user.admix")
        ).decode()
        response = client.get(
            SESSION, headers={"Authorization": f"Bearer {header}.{forged}.{signature}"}
        )
        assert_problem(response, 401, "invalid_token")
