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
        body = assert_problem(response, 422, "validation_error")
        assert "email_verified" in body["detail"]
        assert client.get(ME, headers=tokens.bearer).json() == before

    def test_sub_in_attributes_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        before = client.get(ME, headers=tokens.bearer).json()
        response = client.patch(
            ME, json={"attributes": {"sub": "someone-else"}}, headers=tokens.bearer
        )
        body = assert_problem(response, 422, "validation_error")
        assert "sub" in body["detail"]
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
        body = assert_problem(response, 422, "validation_error")
        assert "no_such_thing" in body["detail"]
        # All or nothing: the valid part was not applied either.
        assert client.get(ME, headers=tokens.bearer).json()["given_name"] is None

    def test_unknown_top_level_field_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(ME, json={"nickname": "x"}, headers=tokens.bearer)
        assert_problem(response, 422, "validation_error")

    def test_family_name_null_is_refused(self, client, outbox):
        _, tokens = signed_in_user(client, outbox)
        response = client.patch(ME, json={"family_name": None}, headers=tokens.bearer)
        body = assert_problem(response, 422, "validation_error")
        assert "family_name" in body["detail"]
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
