"""GET / PATCH /v1/me: the signed-in user's profile (DESIGN §3, profiles)."""

from __future__ import annotations

import jwt

from tests.helpers import assert_problem, signed_in_user

ME = "/v1/me"


class TestGetMe:
    def test_profile_fields(self, client, outbox):
        email, tokens = signed_in_user(
            client, outbox, given_name="Ada", attributes={"test_attribute1": "blue"}
        )
        response = client.get(ME, headers=tokens.bearer)
        assert response.status_code == 200, response.text
        body = response.json()
        claims = jwt.decode(tokens.access_token, options={"verify_signature": False})
        assert body["sub"] == claims["sub"]
        assert body["username"]
        assert body["email"] == email
        assert body["email_verified"] is True
        assert body["given_name"] == "Ada"
        assert body["family_name"] == "Tester"
        assert body["attributes"] == {"test_attribute1": "blue"}
        assert not any(key.startswith("custom:") for key in body)

    def test_profile_without_optional_fields(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        body = client.get(ME, headers=tokens.bearer).json()
        assert body["given_name"] is None
        assert body["attributes"] == {}

    def test_no_token_is_not_authenticated(self, client):
        assert_problem(client.get(ME), 401, "not_authenticated")

    def test_garbage_token_is_invalid_token(self, client):
        response = client.get(ME, headers={"Authorization": "Bearer nope"})
        assert_problem(response, 401, "invalid_token")


class TestPatchMe:
    def test_update_names_and_custom_attribute(self, client, outbox):
        _, tokens = signed_in_user(client, outbox, attributes={"test_attribute1": "old"})
        response = client.patch(
            ME,
            json={
                "given_name": "Grace",
                "family_name": "Hopper",
                "attributes": {"test_attribute1": "new"},
            },
            headers=tokens.bearer,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["given_name"] == "Grace"
        assert body["family_name"] == "Hopper"
        assert body["attributes"] == {"test_attribute1": "new"}
        # Stored at Cognito, not just echoed.
        assert client.get(ME, headers=tokens.bearer).json() == body

    def test_partial_update_leaves_other_fields(self, client, outbox):
        _, tokens = signed_in_user(
            client, outbox, given_name="Ada", attributes={"test_attribute1": "keep"}
        )
        response = client.patch(ME, json={"family_name": "Lovelace"}, headers=tokens.bearer)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["family_name"] == "Lovelace"
        assert body["given_name"] == "Ada"
        assert body["attributes"] == {"test_attribute1": "keep"}

    def test_email_verified_in_attributes_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        before = client.get(ME, headers=tokens.bearer).json()
        response = client.patch(
            ME, json={"attributes": {"email_verified": "false"}}, headers=tokens.bearer
        )
        # A top-level field is never an attribute key: the schema says so (propertyNames).
        body = assert_problem(response, 422, "validation_error")
        assert [e["loc"][:3] for e in body["errors"]] == [["body", "attributes", "email_verified"]]
        assert "own field" in body["errors"][0]["msg"]
        assert client.get(ME, headers=tokens.bearer).json() == before

    def test_sub_in_attributes_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        before = client.get(ME, headers=tokens.bearer).json()
        response = client.patch(
            ME, json={"attributes": {"sub": "someone-else"}}, headers=tokens.bearer
        )
        body = assert_problem(response, 422, "validation_error")
        assert [e["loc"][:3] for e in body["errors"]] == [["body", "attributes", "sub"]]
        assert client.get(ME, headers=tokens.bearer).json() == before

    def test_email_in_attributes_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(
            ME, json={"attributes": {"email": "other@example.com"}}, headers=tokens.bearer
        )
        assert_problem(response, 422, "validation_error")
        assert client.get(ME, headers=tokens.bearer).json()["email"] != "other@example.com"

    def test_unknown_attribute_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(
            ME,
            json={"given_name": "Eve", "attributes": {"no_such_thing": "x"}},
            headers=tokens.bearer,
        )
        # Schema-valid, but the pool has no such attribute: no schema can state that.
        body = assert_problem(response, 400, "unknown_attribute")
        assert "no_such_thing" in body["detail"]
        assert body["errors"] == [
            {
                "loc": ["body", "attributes", "no_such_thing"],
                "msg": "The user pool has no attribute no_such_thing, or this app may not"
                " write it.",
                "type": "unknown_attribute",
            }
        ]
        # All or nothing: the valid part was not applied either.
        assert client.get(ME, headers=tokens.bearer).json()["given_name"] is None

    def test_attribute_the_client_may_not_write_is_unknown(self, client, outbox):
        # `locale` is a standard attribute of the pool, but not in the app client's
        # WriteAttributes (infra/template.yaml).
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(ME, json={"attributes": {"locale": "en"}}, headers=tokens.bearer)
        body = assert_problem(response, 400, "unknown_attribute")
        assert [e["loc"] for e in body["errors"]] == [["body", "attributes", "locale"]]

    def test_value_over_the_pools_limit_is_invalid_attribute_value(self, client, outbox):
        # The template's pool caps test_attribute1 at 256 characters; the schema's 2048 is
        # Cognito's own limit for any attribute.
        _, tokens = signed_in_user(client, outbox, attributes={"test_attribute1": "keep"})
        response = client.patch(
            ME,
            json={"given_name": "Eve", "attributes": {"test_attribute1": "x" * 257}},
            headers=tokens.bearer,
        )
        body = assert_problem(response, 400, "invalid_attribute_value")
        assert body["errors"] == [
            {
                "loc": ["body", "attributes", "test_attribute1"],
                "msg": "test_attribute1 takes at most 256 characters.",
                "type": "invalid_attribute_value",
            }
        ]
        after = client.get(ME, headers=tokens.bearer).json()
        assert after["attributes"] == {"test_attribute1": "keep"}
        assert after["given_name"] is None
        response = client.patch(
            ME, json={"attributes": {"test_attribute1": "x" * 256}}, headers=tokens.bearer
        )
        assert response.status_code == 200, response.text
        assert response.json()["attributes"] == {"test_attribute1": "x" * 256}

    def test_unknown_top_level_field_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(ME, json={"nickname": "x"}, headers=tokens.bearer)
        assert_problem(response, 422, "validation_error")

    def test_names_are_stripped_and_blank_ones_refused(self, client, outbox):
        # The document states it: 1-256 characters as sent, one of them not whitespace.
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(ME, json={"given_name": "  Ada\u3000"}, headers=tokens.bearer)
        assert response.status_code == 200, response.text
        assert response.json()["given_name"] == "Ada"
        for blank in (" ", "\t\u2028", "\x1c"):
            response = client.patch(ME, json={"given_name": blank}, headers=tokens.bearer)
            body = assert_problem(response, 422, "validation_error")
            assert [e["loc"] for e in body["errors"]] == [["body", "given_name"]]
        # Over 256 as sent is over the documented maxLength, even if stripping would fit it.
        response = client.patch(ME, json={"given_name": "Ada" + " " * 254}, headers=tokens.bearer)
        assert_problem(response, 422, "validation_error")
        assert client.get(ME, headers=tokens.bearer).json()["given_name"] == "Ada"

    def test_family_name_null_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(ME, json={"family_name": None}, headers=tokens.bearer)
        # null is schema-valid (it clears an attribute); the pool requires this one.
        body = assert_problem(response, 400, "attribute_required")
        assert body["errors"] == [
            {
                "loc": ["body", "family_name"],
                "msg": "The user pool requires family_name.",
                "type": "attribute_required",
            }
        ]
        assert client.get(ME, headers=tokens.bearer).json()["family_name"] == "Tester"

    def test_custom_attribute_null_clears_it(self, client, outbox):
        _, tokens = signed_in_user(client, outbox, attributes={"test_attribute1": "set"})
        response = client.patch(
            ME, json={"attributes": {"test_attribute1": None}}, headers=tokens.bearer
        )
        assert response.status_code == 200, response.text
        assert response.json()["attributes"].get("test_attribute1", "") == ""

    def test_empty_patch_changes_nothing(self, client, outbox):
        _, tokens = signed_in_user(
            client, outbox, given_name="Ada", attributes={"test_attribute1": "same"}
        )
        before = client.get(ME, headers=tokens.bearer).json()
        response = client.patch(ME, json={}, headers=tokens.bearer)
        assert response.status_code == 200, response.text
        assert response.json() == before

    def test_no_token_is_not_authenticated(self, client):
        assert_problem(client.patch(ME, json={"given_name": "X"}), 401, "not_authenticated")
