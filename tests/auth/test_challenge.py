"""Answering sign-in challenges: NEW_PASSWORD_REQUIRED for admin-created users."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import assert_problem, new_email, sign_in

TEMPORARY = "Temp-Passw0rd!"
NEW = "Brand-New-Passw0rd!"
CHALLENGE = "/v1/auth/challenge"


def admin_created_user(cognito: Any) -> str:
    email = new_email("invited")
    cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        TemporaryPassword=TEMPORARY,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Invited"},
        ],
    )
    return email


@pytest.fixture
def pending(client, cognito) -> tuple[str, dict[str, Any]]:
    """An admin-created user and the challenge its first sign-in answers."""
    email = admin_created_user(cognito)
    response = client.post("/v1/auth/sign-in", json={"email": email, "password": TEMPORARY})
    assert response.status_code == 200, response.text
    return email, response.json()


def answer(client, email: str, session: str, **fields: Any):
    body = {"challenge": "NEW_PASSWORD_REQUIRED", "session": session, "email": email, **fields}
    return client.post(CHALLENGE, json=body)


class TestNewPasswordRequired:
    def test_first_sign_in_answers_the_challenge(self, client, pending):
        _, body = pending
        assert body["kind"] == "challenge"
        assert body["challenge"] == "NEW_PASSWORD_REQUIRED"
        assert isinstance(body["session"], str) and body["session"]
        assert isinstance(body["parameters"], dict)
        assert "access_token" not in body

    def test_weak_new_password_is_invalid_password(self, client, pending):
        email, body = pending
        response = answer(client, email, body["session"], new_password="weakpass")
        problem = assert_problem(response, 422, "invalid_password")
        assert "uppercase" in problem["detail"].lower()
        # The session survives a refused answer.
        response = answer(client, email, body["session"], new_password=NEW)
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "tokens"

    def test_missing_new_password_is_a_validation_error(self, client, pending):
        email, body = pending
        response = answer(client, email, body["session"])
        problem = assert_problem(response, 422, "validation_error")
        # A schema error now (the body is a union on `challenge`), naming the missing field.
        assert any("new_password" in map(str, e["loc"]) for e in problem["errors"]), problem

    def test_forged_session_is_invalid_session(self, client, pending):
        email, _ = pending
        response = answer(client, email, "forged-session-" + "x" * 40, new_password=NEW)
        assert_problem(response, 400, "invalid_session")

    def test_unknown_challenge_name_is_a_validation_error(self, client, pending):
        email, body = pending
        response = client.post(
            CHALLENGE,
            json={
                "challenge": "CUSTOM_CHALLENGE",
                "session": body["session"],
                "email": email,
                "new_password": NEW,
            },
        )
        assert_problem(response, 422, "validation_error")

    def test_correct_answer_returns_tokens_and_sets_the_password(self, client, pending):
        email, body = pending
        response = answer(client, email, body["session"], new_password=NEW)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        tokens = response.json()
        assert tokens["kind"] == "tokens"
        assert tokens["token_type"] == "Bearer"
        assert tokens["access_token"] and tokens["id_token"] and tokens["refresh_token"]

        session = client.get(
            "/v1/auth/session", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert session.status_code == 200, session.text
        refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text

        # The new password now signs in without a challenge; the temporary one is dead.
        again = sign_in(client, email, NEW)
        me = client.get("/v1/me", headers=again.bearer)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        old = client.post("/v1/auth/sign-in", json={"email": email, "password": TEMPORARY})
        assert_problem(old, 401, "invalid_credentials")

    def test_session_cannot_be_reused(self, client, pending):
        email, body = pending
        assert answer(client, email, body["session"], new_password=NEW).status_code == 200
        response = answer(client, email, body["session"], new_password="Another-Passw0rd!")
        assert_problem(response, 400, "invalid_session")
        sign_in(client, email, NEW)


class TestRequestSchema:
    """The body is a union on `challenge` in OpenAPI (issue 13 item 2): each challenge
    requires its own answer, `session` is required and `email` optional, so a body valid
    against the published schema is never refused for a missing field."""

    def test_openapi_is_a_discriminated_union(self, client):
        spec = client.get("/openapi.json").json()
        body = spec["paths"][CHALLENGE]["post"]["requestBody"]["content"]["application/json"]
        schema = body["schema"]
        assert schema["discriminator"]["propertyName"] == "challenge"
        mapping = schema["discriminator"]["mapping"]
        assert set(mapping) == {"NEW_PASSWORD_REQUIRED", "SOFTWARE_TOKEN_MFA", "SMS_MFA"}
        components = spec["components"]["schemas"]
        required = {
            name: set(components[ref.rsplit("/", 1)[1]]["required"])
            for name, ref in mapping.items()
        }
        assert required["NEW_PASSWORD_REQUIRED"] == {"challenge", "session", "new_password"}
        assert required["SOFTWARE_TOKEN_MFA"] == {"challenge", "session", "code"}
        assert required["SMS_MFA"] == {"challenge", "session", "code"}

    @pytest.mark.parametrize(
        "body",
        [
            {"challenge": "NEW_PASSWORD_REQUIRED", "new_password": NEW},
            {"challenge": "SOFTWARE_TOKEN_MFA", "code": "123456"},
            {"challenge": "SMS_MFA", "code": "123456"},
        ],
    )
    def test_schema_valid_bodies_pass_validation(self, client, body):
        # Valid against the schema (no email): refused only for the forged session.
        response = client.post(CHALLENGE, json={**body, "session": "forged-" + "x" * 40})
        assert_problem(response, 400, "invalid_session")

    def test_email_of_another_user_is_invalid_session(self, client, pending):
        _, body = pending
        response = answer(client, new_email("someone-else"), body["session"], new_password=NEW)
        assert_problem(response, 400, "invalid_session")
