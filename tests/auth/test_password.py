"""Password lifecycle: forgot / reset with an emailed code, and change while signed in."""

from __future__ import annotations

import re
import time
import uuid

import jwt

from tests.helpers import (
    PASSWORD,
    assert_problem,
    confirmed_user,
    latest_code,
    new_email,
    sign_in,
    signed_in_user,
)

FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"
CHANGE = "/v1/me/password"
NEW_PASSWORD = "N3w-Passw0rd!"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def forgot(client, outbox, email: str) -> str:
    response = client.post(FORGOT, json={"email": email})
    assert response.status_code == 202, response.text
    return latest_code(outbox, email, "password_reset_code")


def reset(client, email: str, code: str, new_password: str = NEW_PASSWORD):
    return client.post(RESET, json={"email": email, "code": code, "new_password": new_password})


def sign_in_response(client, email: str, password: str):
    return client.post("/v1/auth/sign-in", json={"email": email, "password": password})


def start_of_a_second() -> float:
    time.sleep(1 - time.time() % 1 + 0.01)
    return time.time()


class TestForgotPassword:
    def test_forgot_answers_202_and_emails_a_code(self, client, outbox):
        email = confirmed_user(client, outbox, email=f"bob-{uuid.uuid4().hex[:12]}@example.com")
        response = client.post(FORGOT, json={"email": email})
        assert response.status_code == 202, response.text
        assert response.json() == {"delivery": {"medium": "EMAIL", "destination": "b***@e***.com"}}
        messages = outbox.list(to=email, kind="password_reset_code")
        assert len(messages) == 1
        assert re.fullmatch(r"[0-9]{6}", messages[0].code or "")

    def test_unknown_email_gets_the_same_answer(self, client, outbox):
        known = confirmed_user(client, outbox, email=f"bob-{uuid.uuid4().hex[:12]}@example.com")
        unknown = f"bob-{uuid.uuid4().hex[:12]}@example.com"
        real = client.post(FORGOT, json={"email": known})
        response = client.post(FORGOT, json={"email": unknown})
        assert response.status_code == real.status_code == 202
        assert response.content == real.content
        assert response.headers["content-type"] == real.headers["content-type"]
        assert outbox.list(to=unknown) == []

    def test_bad_email_is_a_validation_error(self, client):
        assert_problem(client.post(FORGOT, json={"email": "nope"}), 422, "validation_error")


class TestResetPassword:
    def test_wrong_code_is_invalid_code(self, client, outbox):
        email = confirmed_user(client, outbox)
        code = forgot(client, outbox, email)
        assert_problem(reset(client, email, wrong(code)), 400, "invalid_code")
        # Nothing changed: the old password still works, the new one does not.
        sign_in(client, email)
        assert_problem(sign_in_response(client, email, NEW_PASSWORD), 401, "invalid_credentials")

    def test_unknown_email_is_invalid_code(self, client, outbox):
        email = confirmed_user(client, outbox)
        code = forgot(client, outbox, email)
        assert_problem(reset(client, new_email(), code), 400, "invalid_code")

    def test_weak_password_is_invalid_password(self, client, outbox):
        email = confirmed_user(client, outbox)
        code = forgot(client, outbox, email)
        body = assert_problem(reset(client, email, code, "weakpassword"), 422, "invalid_password")
        assert "uppercase" in body["detail"].lower()
        # The code survives a refused password.
        assert reset(client, email, code).status_code == 204

    def test_right_code_sets_the_password_and_ends_sessions(self, client, outbox):
        email, before = signed_in_user(client, outbox)
        assert client.get("/v1/auth/session", headers=before.bearer).status_code == 200
        code = forgot(client, outbox, email)

        started = start_of_a_second()
        response = reset(client, email, code)
        assert response.status_code == 204, response.text
        assert response.content == b""

        assert_problem(sign_in_response(client, email, PASSWORD), 401, "invalid_credentials")
        after = sign_in(client, email, NEW_PASSWORD)
        iat = jwt.decode(after.access_token, options={"verify_signature": False})["iat"]
        assert iat == int(started), "the reset and the new sign-in did not share a second"
        assert client.get("/v1/auth/session", headers=after.bearer).status_code == 200

        session = client.get("/v1/auth/session", headers=before.bearer)
        assert_problem(session, 401, "invalid_token")
        assert_problem(client.get("/v1/me", headers=before.bearer), 401, "invalid_token")
        refreshed = client.post("/v1/auth/refresh", json={"refresh_token": before.refresh_token})
        assert_problem(refreshed, 401, "invalid_token")

    def test_code_is_single_use(self, client, outbox):
        email = confirmed_user(client, outbox)
        code = forgot(client, outbox, email)
        assert reset(client, email, code).status_code == 204
        assert_problem(reset(client, email, code, "An0ther-Passw0rd!"), 400, "invalid_code")
        sign_in(client, email, NEW_PASSWORD)

    def test_new_forgot_kills_the_previous_code(self, client, outbox):
        email = confirmed_user(client, outbox)
        old = forgot(client, outbox, email)
        new = forgot(client, outbox, email)
        if new != old:  # one chance in a million that they coincide
            assert_problem(reset(client, email, old), 400, "invalid_code")
        assert reset(client, email, new).status_code == 204

    def test_malformed_code_is_a_validation_error(self, client):
        response = client.post(
            RESET, json={"email": new_email(), "code": "abc", "new_password": NEW_PASSWORD}
        )
        assert_problem(response, 422, "validation_error")


class TestChangePassword:
    def test_wrong_current_password_is_invalid_current_password(self, client, outbox):
        email, tokens = signed_in_user(client, outbox)
        response = client.post(
            CHANGE,
            json={"current_password": "Wr0ng-pass!", "new_password": NEW_PASSWORD},
            headers=tokens.bearer,
        )
        assert_problem(response, 400, "invalid_current_password")
        # Still signed in, password unchanged.
        assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 200
        assert client.get("/v1/me", headers=tokens.bearer).status_code == 200
        sign_in(client, email)

    def test_weak_new_password_is_invalid_password(self, client, outbox):
        email, tokens = signed_in_user(client, outbox)
        response = client.post(
            CHANGE,
            json={"current_password": PASSWORD, "new_password": "alllowercase1!"},
            headers=tokens.bearer,
        )
        body = assert_problem(response, 422, "invalid_password")
        assert "uppercase" in body["detail"].lower()
        assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 200
        sign_in(client, email)

    def test_success_ends_sessions_and_the_new_password_signs_in(self, client, outbox):
        email, tokens = signed_in_user(client, outbox)
        assert client.get("/v1/auth/session", headers=tokens.bearer).status_code == 200

        before = start_of_a_second()
        response = client.post(
            CHANGE,
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            headers=tokens.bearer,
        )
        assert response.status_code == 204, response.text
        fresh = sign_in(client, email, NEW_PASSWORD)

        assert_problem(client.get("/v1/auth/session", headers=tokens.bearer), 401, "invalid_token")
        assert_problem(client.get("/v1/me", headers=tokens.bearer), 401, "invalid_token")
        refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens.refresh_token})
        assert_problem(refreshed, 401, "invalid_token")

        iat = jwt.decode(fresh.access_token, options={"verify_signature": False})["iat"]
        assert iat == int(before), "the change and the new sign-in did not share a second"
        session = client.get("/v1/auth/session", headers=fresh.bearer)
        assert session.status_code == 200, session.text
        assert client.get("/v1/me", headers=fresh.bearer).status_code == 200
        assert_problem(sign_in_response(client, email, PASSWORD), 401, "invalid_credentials")

    def test_no_token_is_not_authenticated(self, client):
        response = client.post(
            CHANGE, json={"current_password": PASSWORD, "new_password": NEW_PASSWORD}
        )
        assert_problem(response, 401, "not_authenticated")

    def test_missing_fields_are_a_validation_error(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.post(CHANGE, json={"new_password": NEW_PASSWORD}, headers=tokens.bearer)
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "current_password"] in [e["loc"] for e in body["errors"]]


class TestPerUserCognitoLimitsDoNotEnumerate:
    """Real Cognito limits resend/forgot per *existing* user (LimitExceededException):
    answering that with 503 would tell which emails have accounts."""

    def test_forgot_answers_the_usual_202_when_cognito_limits_the_user(self, client, outbox):
        from botocore.exceptions import ClientError

        gateway = client.app.state.authsvc.gateway
        email = confirmed_user(client, outbox)
        original = gateway.client.forgot_password

        calls = []

        def limited(**_kwargs):
            calls.append(True)
            raise ClientError(
                {"Error": {"Code": "LimitExceededException", "Message": "Attempt limit exceeded"}},
                "ForgotPassword",
            )

        gateway.client.forgot_password = limited
        try:
            real = client.post("/v1/auth/password/forgot", json={"email": email})
        finally:
            gateway.client.forgot_password = original
        assert calls, "the limited Cognito call was not made: the test would prove nothing"
        unknown = client.post("/v1/auth/password/forgot", json={"email": new_email()})
        assert real.status_code == unknown.status_code == 202
        assert real.json()["delivery"]["medium"] == unknown.json()["delivery"]["medium"]
