"""Sign-out really ends sessions: at Cognito and for locally verified tokens (DESIGN §5)."""

from __future__ import annotations

import time

import jwt

from tests.helpers import assert_problem, sign_in, signed_in_user

SIGN_OUT = "/v1/auth/sign-out"


class TestSignOut:
    def test_sign_out_answers_204(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.post(SIGN_OUT, headers=tokens.bearer)
        assert response.status_code == 204, response.text
        assert response.content == b""

    def test_old_access_token_is_refused_at_cognito_and_locally(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        # Verified (and cached) before the sign-out: the cache must not keep it alive.
        assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 200
        assert client.get("/v1/me", headers=tokens.bearer).status_code == 200

        assert client.post(SIGN_OUT, headers=tokens.bearer).status_code == 204

        me = client.get("/v1/me", headers=tokens.bearer)
        assert_problem(me, 401, "invalid_token")
        session = client.get("/v1/auth/session", headers=tokens.bearer)
        assert_problem(session, 401, "invalid_token")
        assert "invalid_token" in session.headers["www-authenticate"]
        # Signing out again with the dead token is refused too.
        assert_problem(client.post(SIGN_OUT, headers=tokens.bearer), 401, "invalid_token")

    def test_fresh_sign_in_right_after_works(self, client, outbox):
        email, tokens = signed_in_user(client, outbox)
        # Start early in a second so the sign-out and the new token share it: whole-second
        # iat alone cannot tell them apart.
        time.sleep(1 - time.time() % 1 + 0.01)
        before = time.time()
        assert client.post(SIGN_OUT, headers=tokens.bearer).status_code == 204
        fresh = sign_in(client, email)
        iat = jwt.decode(fresh.access_token, options={"verify_signature": False})["iat"]
        assert iat == int(before), "sign-out and sign-in did not share a second"
        session = client.get("/v1/auth/session", headers=fresh.bearer)
        assert session.status_code == 200, session.text
        me = client.get("/v1/me", headers=fresh.bearer)
        assert me.status_code == 200, me.text
        assert_problem(client.get("/v1/auth/session", headers=tokens.bearer), 401, "invalid_token")

    def test_sign_out_ends_every_session_of_the_user(self, client, outbox):
        email, first = signed_in_user(client, outbox)
        second = sign_in(client, email)
        assert client.post(SIGN_OUT, headers=first.bearer).status_code == 204
        assert_problem(client.get("/v1/auth/session", headers=second.bearer), 401, "invalid_token")
        assert_problem(client.get("/v1/me", headers=second.bearer), 401, "invalid_token")

    def test_other_users_are_not_signed_out(self, client, outbox):
        _, mine = signed_in_user(client, outbox)
        _, theirs = signed_in_user(client, outbox)
        assert client.post(SIGN_OUT, headers=mine.bearer).status_code == 204
        assert client.get("/v1/auth/session", headers=theirs.bearer).status_code == 200
        assert client.get("/v1/me", headers=theirs.bearer).status_code == 200

    def test_no_token_is_not_authenticated(self, client):
        response = client.post(SIGN_OUT)
        assert_problem(response, 401, "not_authenticated")
        assert response.headers["www-authenticate"] == "Bearer"

    def test_garbage_token_is_invalid_token(self, client):
        response = client.post(SIGN_OUT, headers={"Authorization": "Bearer garbage"})
        assert_problem(response, 401, "invalid_token")


class TestSignOutWhileCognitoFails:
    def test_refresh_tokens_are_revoked_once_cognito_is_back(self, client, outbox):
        """The local revocation kills the access token at once; the Cognito sign-out that
        failed is retried until it goes through, so the refresh token dies too."""
        from botocore.exceptions import ClientError

        from tests.helpers import signed_in_user

        state = client.app.state.authsvc
        _, tokens = signed_in_user(client, outbox)

        def failing(**_kwargs):
            raise ClientError(
                {"Error": {"Code": "InternalErrorException", "Message": "boom"}}, "GlobalSignOut"
            )

        cognito_client = state.gateway.client
        saved = (cognito_client.global_sign_out, cognito_client.admin_user_global_sign_out)
        cognito_client.global_sign_out = failing
        cognito_client.admin_user_global_sign_out = failing
        try:
            response = client.post("/v1/auth/sign-out", headers=tokens.bearer)
            assert response.status_code == 204, response.text
            assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 401
            assert state.auth.retry_pending_sign_outs() == 0  # still down: stays queued
        finally:
            cognito_client.global_sign_out, cognito_client.admin_user_global_sign_out = saved
        # (The app's own retry loop may get there first: what matters is that it went through.)
        state.auth.retry_pending_sign_outs()
        assert not state.auth._pending_sign_outs
        refresh = client.post("/v1/auth/refresh", json={"refresh_token": tokens.refresh_token})
        assert refresh.status_code == 401, refresh.text
