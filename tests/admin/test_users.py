"""The admin users API (DESIGN §3) against moto's Cognito over HTTP, through the real app.

Every list test works on users whose email starts with a prefix unique to the test, so the
tests stay independent of whatever else lives in the shared pool.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime

import pytest

from authsvc.admin.service import encode_cursor
from authsvc.cursors import CURSOR_PATTERN
from tests.admin.support import (
    TEMPORARY_PASSWORD,
    USERS,
    created_by_admin,
    enable_totp,
    flat,
    user_path,
    username_of,
    walk,
)
from tests.helpers import (
    PASSWORD,
    assert_problem,
    confirmed_user,
    new_email,
    sign_in,
)

NEW_PASSWORD = "N3w-Admin-Set!"
SIGN_IN = "/v1/auth/sign-in"


def prefix() -> str:
    """A tag no other test's email starts with."""
    return f"p{uuid.uuid4().hex[:10]}"


def group_name() -> str:
    return f"staff-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def group(cognito) -> str:
    """A group of the pool other than admin (joining it grants nothing)."""
    name = group_name()
    cognito.client.create_group(UserPoolId=cognito.pool.user_pool_id, GroupName=name)
    return name


def missing_user() -> str:
    return str(uuid.uuid4())


def sign_in_response(client, email: str, password: str = PASSWORD):
    return client.post(SIGN_IN, json={"email": email, "password": password})


def without_request_id(body: dict) -> dict:
    return {k: v for k, v in body.items() if k != "request_id"}


# -- list --------------------------------------------------------------------------------


class TestList:
    def test_email_prefix_finds_exactly_the_matching_users(self, client, outbox, cognito, admin):
        tag = prefix()
        mine = {confirmed_user(client, outbox, email=new_email(tag)) for _ in range(2)}
        confirmed_user(client, outbox)  # someone else
        items = flat(walk(client, admin, USERS, email_prefix=tag))
        assert {item["email"] for item in items} == mine
        assert len(items) == 2

    def test_email_prefix_is_matched_on_the_lower_cased_email(self, client, outbox, admin):
        tag = prefix()
        email = confirmed_user(client, outbox, email=new_email(tag))
        items = flat(walk(client, admin, USERS, email_prefix=tag.upper()))
        assert [item["email"] for item in items] == [email]

    def test_email_prefix_without_matches_is_an_empty_page(self, client, admin):
        response = client.get(USERS, params={"email_prefix": prefix()}, headers=admin.bearer)
        assert response.status_code == 200, response.text
        assert response.json() == {"items": [], "next_cursor": None}

    def test_items_are_user_summaries(self, client, outbox, cognito, admin):
        tag = prefix()
        email = confirmed_user(
            client,
            outbox,
            email=new_email(tag),
            given_name="Ada",
            attributes={"test_attribute1": "v"},
        )
        (item,) = flat(walk(client, admin, USERS, email_prefix=tag))
        assert item["username"] == username_of(cognito, email)
        assert item["email"] == email
        assert item["email_verified"] is True
        assert item["given_name"] == "Ada"
        assert item["family_name"] == "Tester"
        assert item["attributes"] == {"test_attribute1": "v"}
        assert item["status"] == "CONFIRMED"
        assert item["enabled"] is True
        assert datetime.fromisoformat(item["created_at"]).tzinfo is not None
        assert datetime.fromisoformat(item["updated_at"]).tzinfo is not None
        assert not any(":" in key for key in item["attributes"])

    def test_status_force_change_password(self, client, outbox, cognito, admin):
        username = created_by_admin(cognito, new_email(prefix()))
        confirmed = username_of(cognito, confirmed_user(client, outbox))
        items = flat(walk(client, admin, USERS, status="FORCE_CHANGE_PASSWORD", limit=100))
        assert {item["status"] for item in items} == {"FORCE_CHANGE_PASSWORD"}
        usernames = {item["username"] for item in items}
        assert username in usernames
        assert confirmed not in usernames

    def test_status_disabled_after_disable(self, client, outbox, cognito, admin):
        username = username_of(cognito, confirmed_user(client, outbox))
        before = flat(walk(client, admin, USERS, status="disabled", limit=100))
        assert username not in {item["username"] for item in before}

        assert client.post(user_path(username, "disable"), headers=admin.bearer).status_code == 204
        items = flat(walk(client, admin, USERS, status="disabled", limit=100))
        assert username in {item["username"] for item in items}
        assert all(item["enabled"] is False for item in items)

        assert client.post(user_path(username, "enable"), headers=admin.bearer).status_code == 204
        after = flat(walk(client, admin, USERS, status="disabled", limit=100))
        assert username not in {item["username"] for item in after}

    def test_email_prefix_and_status_together(self, client, outbox, cognito, admin):
        tag = prefix()
        confirmed = username_of(cognito, confirmed_user(client, outbox, email=new_email(tag)))
        forced = created_by_admin(cognito, new_email(tag))
        disabled = username_of(cognito, confirmed_user(client, outbox, email=new_email(tag)))
        assert client.post(user_path(disabled, "disable"), headers=admin.bearer).status_code == 204
        # Matching status, other prefix: must not show up.
        created_by_admin(cognito, new_email(prefix()))

        def names(**params) -> list[str]:
            return sorted(i["username"] for i in flat(walk(client, admin, USERS, **params)))

        assert names(email_prefix=tag, status="FORCE_CHANGE_PASSWORD") == [forced]
        assert names(email_prefix=tag, status="disabled") == [disabled]
        # A disabled user keeps its Cognito status.
        assert names(email_prefix=tag, status="CONFIRMED") == sorted([confirmed, disabled])
        assert names(email_prefix=tag, status="UNCONFIRMED") == []
        # Page by page too: a page may be short (filtered here) while the cursor goes on.
        pages = walk(
            client, admin, USERS, email_prefix=tag, status="FORCE_CHANGE_PASSWORD", limit=1
        )
        assert all(len(page) <= 1 for page in pages)
        assert [i["username"] for i in flat(pages)] == [forced]

    def test_walking_every_page_with_limit_1(self, client, outbox, cognito, admin):
        tag = prefix()
        emails = {confirmed_user(client, outbox, email=new_email(tag)) for _ in range(3)}
        forced = new_email(tag)
        created_by_admin(cognito, forced)
        emails.add(forced)
        pages = walk(client, admin, USERS, email_prefix=tag, limit=1)
        assert all(len(page) == 1 for page in pages), pages
        seen = [item["username"] for item in flat(pages)]
        assert len(seen) == len(set(seen)) == 4
        assert {item["email"] for item in flat(pages)} == emails

    def test_walking_the_whole_pool_has_no_duplicates(self, client, outbox, admin):
        email = confirmed_user(client, outbox)
        items = flat(walk(client, admin, USERS, limit=100))
        usernames = [item["username"] for item in items]
        assert len(usernames) == len(set(usernames))
        assert email in {item["email"] for item in items}

    def test_next_cursor_is_null_on_the_last_page(self, client, outbox, admin):
        tag = prefix()
        confirmed_user(client, outbox, email=new_email(tag))
        body = client.get(USERS, params={"email_prefix": tag, "limit": 5}, headers=admin.bearer)
        assert body.json()["next_cursor"] is None

    @pytest.mark.parametrize(
        "cursor",
        [
            "not a cursor",
            "!!!",
            "e30",  # {} in base64
            encode_cursor("garbage")[:-3],  # truncated
            encode_cursor("not-a-pagination-token"),  # well wrapped, refused upstream
        ],
    )
    def test_bad_cursor(self, client, admin, cursor):
        response = client.get(USERS, params={"cursor": cursor}, headers=admin.bearer)
        # Outside the documented pattern: the schema refuses it. Well formed but not one the
        # server issued (or Cognito refuses): invalid_cursor, like any unknown token.
        if re.fullmatch(CURSOR_PATTERN, cursor):
            assert_problem(response, 400, "invalid_cursor")
        else:
            assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize("limit", [0, 101, -1, "many"])
    def test_bad_limit(self, client, admin, limit):
        response = client.get(USERS, params={"limit": limit}, headers=admin.bearer)
        assert_problem(response, 422, "validation_error")

    def test_limit_100_is_allowed(self, client, admin):
        response = client.get(USERS, params={"limit": 100}, headers=admin.bearer)
        assert response.status_code == 200, response.text
        assert len(response.json()["items"]) <= 100

    @pytest.mark.parametrize("status", ["confirmed", "Disabled", "enabled", "", "ALL"])
    def test_bad_status(self, client, admin, status):
        response = client.get(USERS, params={"status": status}, headers=admin.bearer)
        assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize("email_prefix", ['a"b', "a\\b", "a b", ""])
    def test_email_prefix_that_could_break_the_filter(self, client, admin, email_prefix):
        response = client.get(USERS, params={"email_prefix": email_prefix}, headers=admin.bearer)
        assert_problem(response, 422, "validation_error")


# -- get ---------------------------------------------------------------------------------


class TestGet:
    def test_full_view(self, client, outbox, cognito, admin, group):
        email = confirmed_user(
            client, outbox, given_name="Ada", attributes={"test_attribute1": "x"}
        )
        username = username_of(cognito, email)
        cognito.client.admin_add_user_to_group(
            UserPoolId=cognito.pool.user_pool_id, Username=username, GroupName=group
        )
        response = client.get(user_path(username), headers=admin.bearer)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["username"] == username
        assert body["sub"] == username  # moto: the username of an email pool is the sub
        assert body["email"] == email
        assert body["email_verified"] is True
        assert body["given_name"] == "Ada"
        assert body["family_name"] == "Tester"
        assert body["attributes"] == {"test_attribute1": "x"}
        assert body["status"] == "CONFIRMED"
        assert body["enabled"] is True
        assert body["groups"] == [group]
        assert body["mfa_enabled"] is False
        created = datetime.fromisoformat(body["created_at"])
        updated = datetime.fromisoformat(body["updated_at"])
        assert created.tzinfo is not None and updated.tzinfo is not None
        assert created <= updated
        assert not any(key.startswith("custom:") for key in body)
        assert not any(key.startswith("custom:") for key in body["attributes"])

    def test_user_made_by_admin_create_user(self, client, cognito, admin):
        email = new_email("forced")
        username = created_by_admin(cognito, email)
        body = client.get(user_path(username), headers=admin.bearer).json()
        assert body["status"] == "FORCE_CHANGE_PASSWORD"
        assert body["email"] == email
        assert body["groups"] == []

    def test_mfa_enabled_and_admin_turns_it_off(self, client, outbox, cognito, admin):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        enable_totp(cognito, sign_in(client, email).access_token)
        assert client.get(user_path(username), headers=admin.bearer).json()["mfa_enabled"] is True
        first = sign_in_response(client, email).json()
        assert first["kind"] == "challenge" and first["challenge"] == "SOFTWARE_TOKEN_MFA"

        assert client.delete(user_path(username, "mfa"), headers=admin.bearer).status_code == 204
        assert client.get(user_path(username), headers=admin.bearer).json()["mfa_enabled"] is False
        assert sign_in_response(client, email).json()["kind"] == "tokens"

    def test_unknown_user(self, client, admin):
        assert_problem(
            client.get(user_path(missing_user()), headers=admin.bearer), 404, "not_found"
        )

    @pytest.mark.parametrize("username", ["a b", "x" * 129, "semi;colon", "quote'"])
    def test_malformed_username(self, client, admin, username):
        response = client.get(user_path(username), headers=admin.bearer)
        assert_problem(response, 422, "validation_error")


# -- update ------------------------------------------------------------------------------


class TestUpdate:
    def test_names_and_custom_attribute(self, client, outbox, cognito, admin):
        username = username_of(
            cognito, confirmed_user(client, outbox, attributes={"test_attribute1": "old"})
        )
        response = client.patch(
            user_path(username),
            json={
                "given_name": "Grace",
                "family_name": "Hopper",
                "attributes": {"test_attribute1": "new"},
            },
            headers=admin.bearer,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["given_name"], body["family_name"]) == ("Grace", "Hopper")
        assert body["attributes"] == {"test_attribute1": "new"}
        assert {"status", "enabled", "groups", "mfa_enabled"} <= body.keys()
        # Stored at Cognito, not only echoed.
        assert client.get(user_path(username), headers=admin.bearer).json() == body
        stored = cognito.client.admin_get_user(
            UserPoolId=cognito.pool.user_pool_id, Username=username
        )["UserAttributes"]
        assert {"Name": "custom:test_attribute1", "Value": "new"} in stored

    def test_partial_update_keeps_the_rest(self, client, outbox, cognito, admin):
        username = username_of(
            cognito,
            confirmed_user(client, outbox, given_name="Ada", attributes={"test_attribute1": "k"}),
        )
        body = client.patch(
            user_path(username), json={"family_name": "Lovelace"}, headers=admin.bearer
        ).json()
        assert (body["given_name"], body["family_name"]) == ("Ada", "Lovelace")
        assert body["attributes"] == {"test_attribute1": "k"}

    def test_admin_sets_email_verified_false_then_true(self, client, outbox, cognito, admin):
        username = username_of(cognito, confirmed_user(client, outbox))
        off = client.patch(
            user_path(username), json={"email_verified": False}, headers=admin.bearer
        )
        assert off.status_code == 200, off.text
        assert off.json()["email_verified"] is False
        assert (
            client.get(user_path(username), headers=admin.bearer).json()["email_verified"] is False
        )
        on = client.patch(user_path(username), json={"email_verified": True}, headers=admin.bearer)
        assert on.status_code == 200, on.text
        assert on.json()["email_verified"] is True
        assert (
            client.get(user_path(username), headers=admin.bearer).json()["email_verified"] is True
        )

    def test_empty_body_changes_nothing(self, client, outbox, cognito, admin):
        username = username_of(cognito, confirmed_user(client, outbox))
        before = client.get(user_path(username), headers=admin.bearer).json()
        response = client.patch(user_path(username), json={}, headers=admin.bearer)
        assert response.status_code == 200, response.text
        assert response.json() == before

    @pytest.mark.parametrize(
        "attributes",
        [
            {"sub": str(uuid.uuid4())},
            {"email": "someone-else@example.com"},
            {"email_verified": "false"},
            {"given_name": "Sneaky"},
            {"custom:test_attribute1": "x"},
            {"cognito:groups": "admin"},
            {"phone_number_verified": "true"},
        ],
    )
    def test_refused_attributes(self, client, outbox, cognito, admin, attributes):
        """Names the schema itself refuses (top-level fields, prefixes, over 20 characters)."""
        username = username_of(cognito, confirmed_user(client, outbox))
        before = client.get(user_path(username), headers=admin.bearer).json()
        response = client.patch(
            user_path(username), json={"attributes": attributes}, headers=admin.bearer
        )
        assert_problem(response, 422, "validation_error")
        assert client.get(user_path(username), headers=admin.bearer).json() == before

    @pytest.mark.parametrize(
        "body",
        [
            {"email": "someone-else@example.com"},
            {"sub": "x"},
            {"groups": ["admin"]},
            {"email_verified": "perhaps"},
        ],
    )
    def test_refused_bodies(self, client, outbox, cognito, admin, body):
        username = username_of(cognito, confirmed_user(client, outbox))
        response = client.patch(user_path(username), json=body, headers=admin.bearer)
        assert_problem(response, 422, "validation_error")

    @pytest.mark.parametrize(
        ("body", "code", "loc"),
        [
            # what only the pool can refuse: 400 with its own code, errors[] naming the field
            ({"attributes": {"no_such_attribute": "x"}}, "unknown_attribute", None),
            ({"attributes": {"locale": "en"}}, "unknown_attribute", None),  # not writable
            ({"family_name": None}, "attribute_required", ["body", "family_name"]),
            ({"attributes": {"test_attribute1": "x" * 257}}, "invalid_attribute_value", None),
        ],
    )
    def test_pool_refusals(self, client, outbox, cognito, admin, body, code, loc):
        username = username_of(cognito, confirmed_user(client, outbox))
        before = client.get(user_path(username), headers=admin.bearer).json()
        response = client.patch(user_path(username), json=body, headers=admin.bearer)
        problem = assert_problem(response, 400, code)
        name = next(iter(body.get("attributes", {})), None)
        expected = loc or ["body", "attributes", name]
        assert [(e["loc"], e["type"]) for e in problem["errors"]] == [(expected, code)]
        assert client.get(user_path(username), headers=admin.bearer).json() == before

    def test_unknown_user(self, client, admin):
        response = client.patch(
            user_path(missing_user()), json={"given_name": "X"}, headers=admin.bearer
        )
        assert_problem(response, 404, "not_found")

    def test_unknown_user_with_a_bad_attribute_is_still_404(self, client, admin):
        response = client.patch(
            user_path(missing_user()), json={"attributes": {"nope": "x"}}, headers=admin.bearer
        )
        assert_problem(response, 404, "not_found")


# -- password ----------------------------------------------------------------------------


class TestSetPassword:
    def test_permanent_password_signs_in(self, client, outbox, cognito, admin):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        response = client.post(
            user_path(username, "password"),
            json={"password": NEW_PASSWORD, "permanent": True},
            headers=admin.bearer,
        )
        assert response.status_code == 204, response.text
        assert sign_in(client, email, NEW_PASSWORD).access_token
        assert_problem(sign_in_response(client, email, PASSWORD), 401, "invalid_credentials")
        assert client.get(user_path(username), headers=admin.bearer).json()["status"] == "CONFIRMED"

    def test_temporary_password_answers_new_password_required(self, client, outbox, cognito, admin):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        response = client.post(
            user_path(username, "password"),
            json={"password": NEW_PASSWORD, "permanent": False},
            headers=admin.bearer,
        )
        assert response.status_code == 204, response.text
        status = client.get(user_path(username), headers=admin.bearer).json()["status"]
        assert status == "FORCE_CHANGE_PASSWORD"

        answer = sign_in_response(client, email, NEW_PASSWORD)
        assert answer.status_code == 200, answer.text
        challenge = answer.json()
        assert challenge["kind"] == "challenge"
        assert challenge["challenge"] == "NEW_PASSWORD_REQUIRED"
        done = client.post(
            "/v1/auth/challenge",
            json={
                "challenge": "NEW_PASSWORD_REQUIRED",
                "session": challenge["session"],
                "email": email,
                "new_password": "Ch0sen-by-user!",
            },
        )
        assert done.status_code == 200, done.text
        assert done.json()["kind"] == "tokens"
        assert sign_in(client, email, "Ch0sen-by-user!").access_token

    def test_set_password_on_a_force_change_user(self, client, cognito, admin):
        email = new_email("forced")
        username = created_by_admin(cognito, email)
        response = client.post(
            user_path(username, "password"),
            json={"password": NEW_PASSWORD, "permanent": True},
            headers=admin.bearer,
        )
        assert response.status_code == 204, response.text
        assert sign_in(client, email, NEW_PASSWORD).access_token
        assert client.get(user_path(username), headers=admin.bearer).json()["status"] == "CONFIRMED"

    @pytest.mark.parametrize(
        "weak", ["Sh0rt!", "alllowercase1!", "ALLUPPERCASE1!", "NoDigits!!", "NoSymbols123"]
    )
    def test_weak_password(self, client, outbox, cognito, admin, weak):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        response = client.post(
            user_path(username, "password"),
            json={"password": weak, "permanent": True},
            headers=admin.bearer,
        )
        assert_problem(response, 422, "invalid_password")
        assert sign_in(client, email, PASSWORD).access_token  # unchanged

    def test_unknown_user(self, client, admin):
        response = client.post(
            user_path(missing_user(), "password"),
            json={"password": NEW_PASSWORD, "permanent": True},
            headers=admin.bearer,
        )
        assert_problem(response, 404, "not_found")

    @pytest.mark.parametrize(
        "body",
        [
            {"password": NEW_PASSWORD},
            {"permanent": True},
            {"password": NEW_PASSWORD, "permanent": "sometimes"},
            {"password": NEW_PASSWORD, "permanent": True, "notify": True},
        ],
    )
    def test_bad_body(self, client, outbox, cognito, admin, body):
        username = username_of(cognito, confirmed_user(client, outbox))
        response = client.post(user_path(username, "password"), json=body, headers=admin.bearer)
        assert_problem(response, 422, "validation_error")

    def test_temporary_password_is_not_the_current_one(self, client, cognito, admin):
        # The user made by admin_create_user signs in with the temporary password only to be
        # asked for a new one.
        email = new_email("forced")
        created_by_admin(cognito, email)
        answer = sign_in_response(client, email, TEMPORARY_PASSWORD).json()
        assert answer["kind"] == "challenge"
        assert answer["challenge"] == "NEW_PASSWORD_REQUIRED"


# -- disable / enable --------------------------------------------------------------------


class TestDisableEnable:
    def test_disabled_user_cannot_sign_in_and_reads_like_a_wrong_password(
        self, client, outbox, cognito, admin
    ):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        assert client.post(user_path(username, "disable"), headers=admin.bearer).status_code == 204
        assert client.get(user_path(username), headers=admin.bearer).json()["enabled"] is False

        disabled = sign_in_response(client, email)
        wrong = sign_in_response(client, confirmed_user(client, outbox), "Wr0ng-passw0rd!")
        body = assert_problem(disabled, 401, "invalid_credentials")
        reference = assert_problem(wrong, 401, "invalid_credentials")
        assert without_request_id(body) == without_request_id(reference)
        assert disabled.headers["content-type"] == wrong.headers["content-type"]

    def test_enable_restores_sign_in(self, client, outbox, cognito, admin):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        assert client.post(user_path(username, "disable"), headers=admin.bearer).status_code == 204
        assert client.post(user_path(username, "enable"), headers=admin.bearer).status_code == 204
        body = client.get(user_path(username), headers=admin.bearer).json()
        assert body["enabled"] is True
        assert body["status"] == "CONFIRMED"
        assert sign_in(client, email).access_token

    def test_disable_and_enable_are_idempotent(self, client, outbox, cognito, admin):
        username = username_of(cognito, confirmed_user(client, outbox))
        for _ in range(2):
            assert (
                client.post(user_path(username, "disable"), headers=admin.bearer).status_code == 204
            )
        for _ in range(2):
            assert (
                client.post(user_path(username, "enable"), headers=admin.bearer).status_code == 204
            )

    @pytest.mark.parametrize("action", ["disable", "enable", "sign-out"])
    def test_unknown_user(self, client, admin, action):
        response = client.post(user_path(missing_user(), action), headers=admin.bearer)
        assert_problem(response, 404, "not_found")


# -- sign-out ----------------------------------------------------------------------------


class TestSignOut:
    def test_sign_out_answers_204_and_the_user_can_sign_in_again(
        self, client, outbox, cognito, admin
    ):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        sign_in(client, email)
        assert client.post(user_path(username, "sign-out"), headers=admin.bearer).status_code == 204
        fresh = sign_in(client, email)
        assert client.get("/v1/auth/session", headers=fresh.bearer).status_code == 200


# -- groups ------------------------------------------------------------------------------


def session_groups(client, email: str) -> list[str]:
    tokens = sign_in(client, email)
    response = client.get("/v1/auth/session", headers=tokens.bearer)
    assert response.status_code == 200, response.text
    groups: list[str] = response.json()["groups"]
    return groups


class TestGroups:
    def test_add_then_remove(self, client, outbox, cognito, admin, group):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        before = sign_in(client, email)

        assert (
            client.put(user_path(username, "groups", group), headers=admin.bearer).status_code
            == 204
        )
        assert client.get(user_path(username), headers=admin.bearer).json()["groups"] == [group]
        # A token carries the groups it was issued with; the next sign-in has the new one.
        assert client.get("/v1/auth/session", headers=before.bearer).json()["groups"] == []
        assert session_groups(client, email) == [group]

        in_group = sign_in(client, email)
        response = client.delete(user_path(username, "groups", group), headers=admin.bearer)
        assert response.status_code == 204, response.text
        assert client.get(user_path(username), headers=admin.bearer).json()["groups"] == []
        assert session_groups(client, email) == []
        # Removal ends the sessions whose tokens still name the group.
        stale = client.get("/v1/auth/session", headers=in_group.bearer)
        assert_problem(stale, 401, "invalid_token")

    def test_adding_to_the_admin_group_grants_admin_at_next_sign_in(
        self, client, outbox, cognito, admin
    ):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        old = sign_in(client, email)
        response = client.put(user_path(username, "groups", "admin"), headers=admin.bearer)
        assert response.status_code == 204
        assert_problem(client.get(USERS, headers=old.bearer), 403, "forbidden")
        assert client.get(USERS, headers=sign_in(client, email).bearer).status_code == 200

    def test_add_is_idempotent(self, client, outbox, cognito, admin, group):
        username = username_of(cognito, confirmed_user(client, outbox))
        for _ in range(2):
            response = client.put(user_path(username, "groups", group), headers=admin.bearer)
            assert response.status_code == 204, response.text
        assert client.get(user_path(username), headers=admin.bearer).json()["groups"] == [group]

    def test_remove_from_a_group_the_user_is_not_in(self, client, outbox, cognito, admin, group):
        username = username_of(cognito, confirmed_user(client, outbox))
        response = client.delete(user_path(username, "groups", group), headers=admin.bearer)
        assert response.status_code == 204, response.text

    @pytest.mark.parametrize("method", ["put", "delete"])
    def test_unknown_group(self, client, outbox, cognito, admin, method):
        username = username_of(cognito, confirmed_user(client, outbox))
        response = getattr(client, method)(
            user_path(username, "groups", group_name()), headers=admin.bearer
        )
        assert_problem(response, 404, "not_found")
        assert client.get(user_path(username), headers=admin.bearer).json()["groups"] == []

    @pytest.mark.parametrize("method", ["put", "delete"])
    def test_unknown_user(self, client, admin, group, method):
        response = getattr(client, method)(
            user_path(missing_user(), "groups", group), headers=admin.bearer
        )
        assert_problem(response, 404, "not_found")

    def test_malformed_group_name(self, client, outbox, cognito, admin):
        username = username_of(cognito, confirmed_user(client, outbox))
        response = client.put(user_path(username, "groups", "a b"), headers=admin.bearer)
        assert_problem(response, 422, "validation_error")


# -- mfa ---------------------------------------------------------------------------------


class TestMfa:
    def test_turning_off_mfa_that_is_off(self, client, outbox, cognito, admin):
        username = username_of(cognito, confirmed_user(client, outbox))
        assert client.delete(user_path(username, "mfa"), headers=admin.bearer).status_code == 204
        assert client.get(user_path(username), headers=admin.bearer).json()["mfa_enabled"] is False

    def test_unknown_user(self, client, admin):
        response = client.delete(user_path(missing_user(), "mfa"), headers=admin.bearer)
        assert_problem(response, 404, "not_found")


# -- delete ------------------------------------------------------------------------------


class TestDelete:
    def test_delete(self, client, outbox, cognito, admin):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        assert client.delete(user_path(username), headers=admin.bearer).status_code == 204
        assert_problem(client.get(user_path(username), headers=admin.bearer), 404, "not_found")
        assert_problem(sign_in_response(client, email), 401, "invalid_credentials")
        assert_problem(client.delete(user_path(username), headers=admin.bearer), 404, "not_found")
        assert flat(walk(client, admin, USERS, email_prefix=email)) == []

    def test_the_email_can_sign_up_again(self, client, outbox, cognito, admin):
        email = confirmed_user(client, outbox)
        username = username_of(cognito, email)
        assert client.delete(user_path(username), headers=admin.bearer).status_code == 204
        confirmed_user(client, outbox, email=email)
        assert username_of(cognito, email) != username

    def test_unknown_user(self, client, admin):
        assert_problem(
            client.delete(user_path(missing_user()), headers=admin.bearer), 404, "not_found"
        )
