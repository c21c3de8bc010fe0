"""Sign-in with email and password (DESIGN §2 error table, §3 sign-in results)."""

from __future__ import annotations

import jwt

from tests.helpers import PASSWORD, assert_problem, confirmed_user, new_email, sign_up

SIGN_IN = "/v1/auth/sign-in"


def without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "request_id"}


class TestSignIn:
    def test_success_answers_tokens(self, client, outbox, cognito):
        email = confirmed_user(client, outbox)
        response = client.post(SIGN_IN, json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["kind"] == "tokens"
        assert body["token_type"] == "Bearer"
        assert isinstance(body["expires_in"], int) and body["expires_in"] > 0
        assert body["refresh_token"]

        access = jwt.decode(body["access_token"], options={"verify_signature": False})
        assert access["token_use"] == "access"
        assert access["client_id"] == cognito.pool.client_id
        assert access["exp"] - access["iat"] == body["expires_in"]
        id_token = jwt.decode(body["id_token"], options={"verify_signature": False})
        assert id_token["token_use"] == "id"
        assert id_token["email"] == email
        assert id_token["sub"] == access["sub"]

        session = client.get(
            "/v1/auth/session", headers={"Authorization": f"Bearer {body['access_token']}"}
        )
        assert session.status_code == 200, session.text
        assert session.json()["sub"] == access["sub"]

    def test_email_is_case_insensitive(self, client, outbox):
        email = confirmed_user(client, outbox)
        response = client.post(SIGN_IN, json={"email": email.upper(), "password": PASSWORD})
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "tokens"

    def test_wrong_password_unknown_user_and_disabled_user_read_the_same(
        self, client, outbox, cognito
    ):
        email = confirmed_user(client, outbox)
        disabled = confirmed_user(client, outbox)
        cognito.client.admin_disable_user(UserPoolId=cognito.pool.user_pool_id, Username=disabled)

        wrong_password = client.post(SIGN_IN, json={"email": email, "password": "Wr0ng-pass!"})
        unknown = client.post(SIGN_IN, json={"email": new_email(), "password": PASSWORD})
        disabled_user = client.post(SIGN_IN, json={"email": disabled, "password": PASSWORD})

        reference = assert_problem(wrong_password, 401, "invalid_credentials")
        for response in (unknown, disabled_user):
            body = assert_problem(response, 401, "invalid_credentials")
            assert without_request_id(body) == without_request_id(reference)
            assert response.headers["content-type"] == wrong_password.headers["content-type"]

    def test_unconfirmed_user_is_told_to_confirm(self, client):
        email = new_email()
        assert sign_up(client, email).status_code == 202
        response = client.post(SIGN_IN, json={"email": email, "password": PASSWORD})
        assert_problem(response, 403, "user_not_confirmed")

    def test_unconfirmed_user_with_wrong_password_gets_invalid_credentials(self, client):
        email = new_email()
        assert sign_up(client, email).status_code == 202
        response = client.post(SIGN_IN, json={"email": email, "password": "Wr0ng-pass!"})
        assert_problem(response, 401, "invalid_credentials")

    def test_missing_password_is_a_validation_error(self, client):
        response = client.post(SIGN_IN, json={"email": new_email()})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "password"] in [e["loc"] for e in body["errors"]]

    def test_missing_email_is_a_validation_error(self, client):
        response = client.post(SIGN_IN, json={"password": PASSWORD})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "email"] in [e["loc"] for e in body["errors"]]

    def test_empty_body_is_a_validation_error(self, client):
        response = client.post(SIGN_IN, json={})
        body = assert_problem(response, 422, "validation_error")
        locs = [e["loc"] for e in body["errors"]]
        assert ["body", "email"] in locs and ["body", "password"] in locs

    def test_malformed_json_is_a_validation_error(self, client):
        response = client.post(
            SIGN_IN,
            content=b'{"email": "a@example.com", "password": ',
            headers={"Content-Type": "application/json"},
        )
        body = assert_problem(response, 422, "validation_error")
        assert "json_invalid" in [e["type"] for e in body["errors"]]

    def test_unknown_field_is_a_validation_error(self, client, outbox):
        email = confirmed_user(client, outbox)
        response = client.post(SIGN_IN, json={"email": email, "password": PASSWORD, "otp": "1"})
        assert_problem(response, 422, "validation_error")


def test_a_sign_in_reads_its_new_token_once(client, outbox, monkeypatch):
    # The revocation ledger, the wrapped refresh token (the client has a secret) and the
    # audit event's actor all need the issued token's claims: decoded once per sign-in.
    import base64

    from authsvc.cognito import tokens

    email = confirmed_user(client, outbox)
    decoded: list[str] = []
    real_loads = tokens.json.loads

    class CountingJson:
        @staticmethod
        def loads(data):
            decoded.append("loads")
            return real_loads(data)

    monkeypatch.setattr(tokens, "json", CountingJson)
    response = client.post(SIGN_IN, json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert decoded == ["loads"]
    body = response.json()
    access = jwt.decode(body["access_token"], options={"verify_signature": False})
    sub = access["sub"]
    # The wrapped refresh token carries the username read from that one decode.
    prefix, _, rest = body["refresh_token"].partition(".")
    encoded = rest.split(".", 1)[0]
    assert prefix == "rt1"
    assert (
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        == (access["username"])
    )
    session = client.get(
        "/v1/auth/session", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert session.status_code == 200 and session.json()["sub"] == sub


def test_unverified_claims_are_read_only_and_follow_the_token():
    import base64
    import json

    import pytest

    from authsvc.cognito.tokens import unverified_claims

    def token(claims: dict) -> str:
        payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
        return f"e30.{payload}.c2ln"

    first, second = token({"sub": "a", "n": 1}), token({"sub": "b", "n": 2})
    assert unverified_claims(first)["sub"] == "a"
    assert unverified_claims(first)["sub"] == "a"
    assert unverified_claims(second)["sub"] == "b"
    assert unverified_claims(first)["n"] == 1
    with pytest.raises(TypeError):
        unverified_claims(first)["sub"] = "mallory"  # type: ignore[index]
    with pytest.raises(ValueError):
        unverified_claims(token(["not", "an", "object"]))  # type: ignore[arg-type]
