"""Refresh: new access and ID tokens from a refresh token (DESIGN §3, §5)."""

from __future__ import annotations

import jwt

from tests.helpers import assert_problem, signed_in_user

REFRESH = "/v1/auth/refresh"


class TestRefresh:
    def test_refresh_returns_a_usable_access_token(self, client, outbox):
        email, tokens = signed_in_user(client, outbox)
        response = client.post(REFRESH, json={"refresh_token": tokens.refresh_token})
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["kind"] == "tokens"
        assert body["token_type"] == "Bearer"
        assert body["expires_in"] > 0
        assert body["access_token"] != tokens.access_token
        # Cognito does not rotate the refresh token: the same one keeps working.
        assert body["refresh_token"] == tokens.refresh_token

        old = jwt.decode(tokens.access_token, options={"verify_signature": False})
        new = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert new["sub"] == old["sub"]
        assert new["jti"] != old["jti"]

        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        me = client.get("/v1/me", headers=bearer)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        session = client.get("/v1/auth/session", headers=bearer)
        assert session.status_code == 200, session.text
        assert session.json()["sub"] == old["sub"]

        again = client.post(REFRESH, json={"refresh_token": body["refresh_token"]})
        assert again.status_code == 200, again.text

    def test_garbage_refresh_token_is_invalid_token(self, client):
        response = client.post(REFRESH, json={"refresh_token": "not-a-refresh-token"})
        assert_problem(response, 401, "invalid_token")

    def test_refresh_token_is_dead_after_sign_out(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.post("/v1/auth/sign-out", headers=tokens.bearer)
        assert response.status_code == 204, response.text
        response = client.post(REFRESH, json={"refresh_token": tokens.refresh_token})
        assert_problem(response, 401, "invalid_token")

    def test_missing_refresh_token_is_a_validation_error(self, client):
        body = assert_problem(client.post(REFRESH, json={}), 422, "validation_error")
        assert ["body", "refresh_token"] in [e["loc"] for e in body["errors"]]

    def test_empty_refresh_token_is_a_validation_error(self, client):
        assert_problem(client.post(REFRESH, json={"refresh_token": ""}), 422, "validation_error")
