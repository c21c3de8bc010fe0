"""Sign-up, confirmation and resend (DESIGN §2, §3; dev outbox behaviour from dev/gateway.py)."""

from __future__ import annotations

import re
import uuid

import pytest

from authsvc.dev.gateway import MAX_ATTEMPTS
from tests.helpers import (
    PASSWORD,
    assert_problem,
    confirmed_user,
    latest_code,
    new_email,
    sign_in,
    sign_up,
)

SIGN_UP = "/v1/auth/sign-up"
CONFIRM = "/v1/auth/sign-up/confirm"
RESEND = "/v1/auth/sign-up/resend"
MASKED = {"delivery": {"medium": "EMAIL", "destination": "b***@e***.com"}}


def bob_email() -> str:
    """An address that masks to ``b***@e***.com``."""
    return f"bob-{uuid.uuid4().hex[:12]}@example.com"


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "request_id"}


def confirm(client, email: str, code: str):
    return client.post(CONFIRM, json={"email": email, "code": code})


class TestSignUp:
    def test_success_answers_202_with_masked_delivery(self, client):
        response = sign_up(client, bob_email())
        assert response.status_code == 202, response.text
        assert response.json() == MASKED

    def test_delivery_is_computed_from_the_submitted_address(self, client):
        email = f"zed-{uuid.uuid4().hex[:12]}@example.org"
        response = sign_up(client, email)
        assert response.status_code == 202, response.text
        assert response.json() == {"delivery": {"medium": "EMAIL", "destination": "z***@e***.org"}}

    def test_code_is_delivered_to_the_dev_outbox(self, client, outbox):
        email = new_email()
        assert sign_up(client, email).status_code == 202
        messages = outbox.list(to=email, kind="sign_up_code")
        assert len(messages) == 1
        assert re.fullmatch(r"[0-9]{6}", messages[0].code or "")
        assert messages[0].code in messages[0].body

    def test_existing_email_gets_the_same_answer_as_a_new_one(self, client, outbox):
        existing = confirmed_user(client, outbox, email=bob_email())
        unconfirmed = bob_email()
        assert sign_up(client, unconfirmed).status_code == 202

        fresh = sign_up(client, bob_email())
        again = sign_up(client, existing, password="Other-Passw0rd!")
        again_unconfirmed = sign_up(client, unconfirmed)

        for response in (again, again_unconfirmed):
            assert response.status_code == fresh.status_code == 202
            assert response.content == fresh.content
            assert response.headers["content-type"] == fresh.headers["content-type"]
        # The existing account keeps its password.
        sign_in(client, existing)

    def test_email_is_lower_cased(self, client, outbox):
        local = f"Bob-{uuid.uuid4().hex[:12]}"
        submitted = f"{local}@Example.COM"
        response = sign_up(client, submitted)
        assert response.status_code == 202, response.text
        assert response.json() == MASKED

        lowered = submitted.lower()
        assert outbox.list(to=submitted) == []
        code = latest_code(outbox, lowered, "sign_up_code")
        # Any spelling of the address reaches the same account.
        assert confirm(client, submitted.upper(), code).status_code == 204
        tokens = sign_in(client, lowered)
        me = client.get("/v1/me", headers=tokens.bearer)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == lowered

    def test_weak_password_is_refused_naming_the_rules(self, client, outbox):
        email = new_email()
        response = sign_up(client, email, password="password")
        body = assert_problem(response, 422, "invalid_password")
        detail = body["detail"].lower()
        assert "uppercase" in detail
        assert "number" in detail
        assert "symbol" in detail
        assert "lowercase" not in detail  # that rule is met
        assert outbox.list(to=email) == []

    def test_short_password_names_the_minimum_length(self, client):
        body = assert_problem(
            sign_up(client, new_email(), password="Aa1!"), 422, "invalid_password"
        )
        assert "8 characters" in body["detail"]

    def test_missing_family_name_is_a_validation_error(self, client):
        response = client.post(SIGN_UP, json={"email": new_email(), "password": PASSWORD})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "family_name"] in [e["loc"] for e in body["errors"]]

    def test_missing_email_is_a_validation_error(self, client):
        response = client.post(SIGN_UP, json={"password": PASSWORD, "family_name": "Tester"})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "email"] in [e["loc"] for e in body["errors"]]

    def test_bad_email_is_a_validation_error(self, client):
        response = sign_up(client, "not-an-email")
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "email"] in [e["loc"] for e in body["errors"]]

    def test_unknown_field_is_a_validation_error(self, client, outbox):
        email = new_email()
        response = sign_up(client, email, nickname="bobby")
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "nickname"] in [e["loc"] for e in body["errors"]]
        assert outbox.list(to=email) == []

    def test_unknown_custom_attribute_is_unknown_attribute(self, client, outbox):
        # Schema-valid (the pool decides which attributes exist): 400, never validation_error.
        email = new_email()
        response = sign_up(client, email, attributes={"no_such_attribute": "x"})
        body = assert_problem(response, 400, "unknown_attribute")
        assert "no_such_attribute" in body["detail"]
        assert body["errors"] == [
            {
                "loc": ["body", "attributes", "no_such_attribute"],
                "msg": "The user pool has no attribute no_such_attribute, or this app may not"
                " write it.",
                "type": "unknown_attribute",
            }
        ]
        assert outbox.list(to=email) == []

    def test_attribute_the_client_may_not_write_is_unknown_attribute(self, client, outbox):
        # `locale` is one of the pool's standard attributes, not in the client's WriteAttributes.
        email = new_email()
        response = sign_up(client, email, attributes={"locale": "en"})
        body = assert_problem(response, 400, "unknown_attribute")
        assert [e["loc"] for e in body["errors"]] == [["body", "attributes", "locale"]]
        assert outbox.list(to=email) == []

    def test_value_over_the_pools_limit_is_invalid_attribute_value(self, client, outbox):
        email = new_email()
        response = sign_up(client, email, attributes={"test_attribute1": "x" * 257})
        body = assert_problem(response, 400, "invalid_attribute_value")
        assert body["errors"] == [
            {
                "loc": ["body", "attributes", "test_attribute1"],
                "msg": "test_attribute1 takes at most 256 characters.",
                "type": "invalid_attribute_value",
            }
        ]
        assert outbox.list(to=email) == []

    @pytest.mark.parametrize("name", ["email_verified", "email", "sub", "family_name"])
    def test_top_level_name_inside_attributes_is_a_validation_error(self, client, outbox, name):
        # The schema states it (the attribute-name pattern leaves these names out).
        email = new_email()
        response = sign_up(client, email, attributes={name: "victim@example.com"})
        body = assert_problem(response, 422, "validation_error")
        assert [e["loc"][:3] for e in body["errors"]] == [["body", "attributes", name]]
        assert outbox.list(to=email) == []

    def test_prefixed_attribute_name_is_a_validation_error(self, client):
        response = sign_up(client, new_email(), attributes={"custom:test_attribute1": "x"})
        body = assert_problem(response, 422, "validation_error")
        assert any(e["loc"][:2] == ["body", "attributes"] for e in body["errors"])

    def test_custom_attribute_is_stored(self, client, outbox):
        email = confirmed_user(client, outbox, attributes={"test_attribute1": "hello"})
        me = client.get("/v1/me", headers=sign_in(client, email).bearer)
        assert me.json()["attributes"] == {"test_attribute1": "hello"}


class TestConfirmSignUp:
    def test_wrong_code_is_invalid_code(self, client, outbox):
        email = new_email()
        sign_up(client, email)
        code = latest_code(outbox, email, "sign_up_code")
        assert_problem(confirm(client, email, wrong(code)), 400, "invalid_code")
        # Still unconfirmed.
        response = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert_problem(response, 403, "user_not_confirmed")

    def test_unknown_email_reads_like_a_wrong_code(self, client, outbox):
        email = new_email()
        sign_up(client, email)
        code = latest_code(outbox, email, "sign_up_code")
        wrong_code = assert_problem(confirm(client, email, wrong(code)), 400, "invalid_code")
        unknown = assert_problem(confirm(client, new_email(), code), 400, "invalid_code")
        assert without_request_id(unknown) == without_request_id(wrong_code)

    def test_right_code_confirms_and_verifies_the_email(self, client, outbox):
        email = new_email()
        sign_up(client, email)
        response = confirm(client, email, latest_code(outbox, email, "sign_up_code"))
        assert response.status_code == 204, response.text
        assert response.content == b""

        tokens = sign_in(client, email)
        me = client.get("/v1/me", headers=tokens.bearer)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == email
        assert me.json()["email_verified"] is True

    def test_code_is_single_use(self, client, outbox):
        email = new_email()
        sign_up(client, email)
        code = latest_code(outbox, email, "sign_up_code")
        assert confirm(client, email, code).status_code == 204
        # Used once; the second time the answer says why (issue 13), as Cognito's does.
        body = assert_problem(confirm(client, email, code), 409, "conflict")
        assert "already confirmed" in body["detail"]

    def test_malformed_code_is_a_validation_error(self, client):
        response = client.post(CONFIRM, json={"email": new_email(), "code": "12ab"})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "code"] in [e["loc"] for e in body["errors"]]

    def test_too_many_wrong_codes_exhaust_the_code(self, client, outbox):
        email = new_email()
        sign_up(client, email)
        code = latest_code(outbox, email, "sign_up_code")
        for _ in range(MAX_ATTEMPTS):
            assert_problem(confirm(client, email, wrong(code)), 400, "invalid_code")
        # The sixth try is refused as expired, even with the right code...
        body = assert_problem(confirm(client, email, code), 400, "expired_code")
        assert "new one" in body["detail"]
        # ...and the code is gone for good.
        assert_problem(confirm(client, email, code), 400, "invalid_code")
        response = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert_problem(response, 403, "user_not_confirmed")

        # A resent code works.
        assert client.post(RESEND, json={"email": email}).status_code == 202
        fresh = latest_code(outbox, email, "sign_up_code")
        assert confirm(client, email, fresh).status_code == 204
        sign_in(client, email)

    def test_sixth_wrong_code_is_expired_code(self, client, outbox):
        email = new_email()
        sign_up(client, email)
        code = latest_code(outbox, email, "sign_up_code")
        statuses = [confirm(client, email, wrong(code)) for _ in range(MAX_ATTEMPTS + 1)]
        codes = [r.json()["code"] for r in statuses]
        assert codes == ["invalid_code"] * MAX_ATTEMPTS + ["expired_code"]
        assert_problem(statuses[-1], 400, "expired_code")


class TestResendCode:
    def test_resend_issues_a_new_code_and_kills_the_old_one(self, client, outbox):
        email = bob_email()
        sign_up(client, email)
        old = latest_code(outbox, email, "sign_up_code")

        response = client.post(RESEND, json={"email": email})
        assert response.status_code == 202, response.text
        assert response.json() == MASKED
        messages = outbox.list(to=email, kind="sign_up_code")
        assert len(messages) == 2
        new = messages[0].code
        assert new is not None and re.fullmatch(r"[0-9]{6}", new)

        if new != old:  # one chance in a million that they coincide
            assert_problem(confirm(client, email, old), 400, "invalid_code")
        assert confirm(client, email, new).status_code == 204
        sign_in(client, email)

    def test_unknown_and_confirmed_emails_get_the_same_answer(self, client, outbox):
        pending = bob_email()
        sign_up(client, pending)
        confirmed = confirmed_user(client, outbox, email=bob_email())
        unknown = bob_email()

        real = client.post(RESEND, json={"email": pending})
        for email in (unknown, confirmed):
            response = client.post(RESEND, json={"email": email})
            assert response.status_code == real.status_code == 202
            assert response.content == real.content
            assert response.headers["content-type"] == real.headers["content-type"]
        # Nothing is sent to an address without a pending sign-up.
        assert outbox.list(to=unknown) == []
        assert len(outbox.list(to=confirmed, kind="sign_up_code")) == 1

    def test_missing_email_is_a_validation_error(self, client):
        assert_problem(client.post(RESEND, json={}), 422, "validation_error")
