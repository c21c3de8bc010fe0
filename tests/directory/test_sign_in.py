"""POST /v1/auth/directory/sign-in against slapd and moto (CUSTOM_AUTH through the triggers)."""

from __future__ import annotations

from typing import Any

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.conftest import Emulator
from tests.directory.conftest import PEOPLE
from tests.helpers import assert_problem

ALICE = PEOPLE[0]
BOB = PEOPLE[1]


def sign_in(client: TestClient, username: str, password: str, **kwargs: Any) -> Any:
    return client.post(
        "/v1/auth/directory/sign-in", json={"username": username, "password": password}, **kwargs
    )


def claims(token: str) -> dict[str, Any]:
    return jwt.decode(token, options={"verify_signature": False})


def new_engineer(slapd: Any, tag: str, given_name: str, surname: str) -> tuple[Any, str]:
    """A new directory person in the engineering group: (the person, their DN)."""
    from authsvc.dev.slapd import GROUP_BASE, Person
    from tests.directory.conftest import new_uid

    uid = new_uid(tag)
    person = Person(uid, f"{surname}-pw-1", f"{uid}@corp.example.com", given_name, surname)
    dn = slapd.add(person)
    conn = slapd._admin()
    conn.modify(f"cn=engineering,{GROUP_BASE}", {"member": [("MODIFY_ADD", [dn])]})
    conn.unbind()
    return person, dn


class TestSignIn:
    def test_directory_password_gives_tokens_with_attributes_and_groups(
        self, dir_client: TestClient, dir_settings: Any, cognito: Emulator
    ) -> None:
        response = sign_in(dir_client, ALICE.uid, ALICE.password)
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        body = response.json()
        assert body["kind"] == "tokens" and body["refresh_token"].startswith("dir1.")
        access = claims(body["access_token"])
        assert access["client_id"] == dir_settings.directory_client_id
        assert set(access["cognito:groups"]) >= {"engineering", "directory"}
        id_claims = claims(body["id_token"])
        assert id_claims["given_name"] == "Alice"
        assert id_claims["family_name"] == "Anders"
        assert id_claims["custom:test_attribute1"] == "R&D"
        # The Cognito user exists, confirmed, with the directory's mail as its email.
        user = cognito.client.admin_get_user(
            UserPoolId=cognito.pool.user_pool_id, Username=ALICE.mail
        )
        assert user["UserStatus"] == "CONFIRMED"
        attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        assert attributes["email"] == ALICE.mail
        assert attributes["email_verified"] == "true"

    def test_tokens_are_ordinary_authsvc_tokens(self, dir_client: TestClient) -> None:
        body = sign_in(dir_client, BOB.uid, BOB.password).json()
        bearer = {"Authorization": f"Bearer {body['access_token']}"}
        session = dir_client.get("/v1/auth/session", headers=bearer)
        assert session.status_code == 200, session.text
        assert "directory" in session.json()["groups"]
        me = dir_client.get("/v1/me", headers=bearer)
        assert me.status_code == 200, me.text
        assert me.json()["email"] == BOB.mail
        refreshed = dir_client.post(
            "/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        new_access = refreshed.json()["access_token"]
        assert (
            dir_client.get(
                "/v1/auth/session", headers={"Authorization": f"Bearer {new_access}"}
            ).status_code
            == 200
        )
        assert dir_client.post("/v1/auth/sign-out", headers=bearer).status_code == 204
        assert_problem(dir_client.get("/v1/auth/session", headers=bearer), 401, "invalid_token")
        again = dir_client.post("/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert_problem(again, 401, "invalid_token")

    def test_cookie_transport(self, dir_client: TestClient) -> None:
        response = sign_in(
            dir_client, BOB.uid, BOB.password, headers={"X-Token-Transport": "cookie"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"] is None
        assert "__Host-authsvc_refresh=dir1." in response.headers["set-cookie"]

    def test_refresh_from_the_cookie(self, dir_client: TestClient) -> None:
        origin = "http://spa.example.test"
        response = sign_in(
            dir_client, BOB.uid, BOB.password, headers={"X-Token-Transport": "cookie"}
        )
        header = response.headers["set-cookie"]
        cookie = header.split(";", 1)[0].split("=", 1)[1]
        assert cookie.startswith("dir1.")
        dir_client.cookies.clear()
        refreshed = dir_client.post(
            "/v1/auth/refresh",
            headers={
                "X-Token-Transport": "cookie",
                "X-CSRF": "1",
                "Origin": origin,
                "Cookie": f"__Host-authsvc_refresh={cookie}",
            },
        )
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"] is None

    def test_username_is_case_insensitive(self, dir_client: TestClient) -> None:
        assert sign_in(dir_client, "BOB", BOB.password).status_code == 200

    def test_audit_records_directory_sign_in(
        self, dir_client: TestClient, dir_settings: Any
    ) -> None:
        from sqlalchemy import create_engine, text

        ok = sign_in(dir_client, BOB.uid, BOB.password)
        assert ok.status_code == 200
        username = claims(ok.json()["access_token"])["username"]
        assert sign_in(dir_client, BOB.uid, "wrong").status_code == 401
        dir_client.app.state.authsvc.audit.flush()  # type: ignore[attr-defined]
        engine = create_engine(dir_settings.database_url)
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT action, target, target_email, detail FROM audit_event"
                    " WHERE action LIKE 'directory_sign_in%' ORDER BY occurred_at DESC"
                )
            ).all()
        engine.dispose()
        # The subject by its pool names; the directory login name in the detail.
        mine = [r for r in rows if r[3].get("login") == BOB.uid][:2]
        assert [(r[0], r[1], r[2]) for r in mine] == [
            ("directory_sign_in_failed", None, None),  # the directory vouched for nobody
            ("directory_sign_in", username, BOB.mail),
        ]


class TestRefused:
    def test_wrong_password_reads_exactly_like_invalid_credentials(
        self, dir_client: TestClient, client: TestClient
    ) -> None:
        wrong = sign_in(dir_client, ALICE.uid, "Not-her-password-1")
        body = assert_problem(wrong, 401, "invalid_credentials")
        unknown = sign_in(dir_client, "nobody-here", "Whatever-1")
        disabled = sign_in(dir_client, "carol", "Carol-pw-1")
        regular = client.post(
            "/v1/auth/sign-in", json={"email": "nobody@example.com", "password": "Whatever-1"}
        )
        for other in (unknown, disabled, regular):
            assert other.status_code == 401
            varying = {"instance", "request_id"}
            assert {k: v for k, v in other.json().items() if k not in varying} == {
                k: v for k, v in body.items() if k not in varying
            }

    @pytest.mark.parametrize("username", ["*", "a*", "alice)(uid=*", "*)(|(uid=*", "alice\x00"])
    def test_filter_injection_is_refused(self, dir_client: TestClient, username: str) -> None:
        # amy has alice's password: a filter that matched more than alice would find her.
        assert_problem(sign_in(dir_client, username, ALICE.password), 401, "invalid_credentials")

    def test_empty_password_is_refused_before_the_directory(self, dir_client: TestClient) -> None:
        assert_problem(sign_in(dir_client, ALICE.uid, ""), 422, "validation_error")

    def test_entry_without_mail_is_refused(self, dir_client: TestClient) -> None:
        assert_problem(sign_in(dir_client, "nomail", "Nomail-pw-1"), 401, "invalid_credentials")

    def test_unknown_fields_are_refused(self, dir_client: TestClient) -> None:
        response = dir_client.post(
            "/v1/auth/directory/sign-in",
            json={"username": "alice", "password": "x", "email": "a@b.c"},
        )
        assert_problem(response, 422, "validation_error")

    def test_not_configured_is_not_found(self, client: TestClient) -> None:
        assert_problem(sign_in(client, "alice", "x"), 404, "not_found")


class TestLimits:
    def test_failures_per_username_then_429_even_for_the_right_password(
        self, cognito: Emulator, database_url: str, slapd: Any, directory_client_id: str
    ) -> None:
        from authsvc.main import create_app
        from tests.directory.conftest import directory_settings

        settings = directory_settings(
            cognito,
            database_url,
            slapd,
            directory_client_id,
            rate_limits_enabled=True,
            rate_limit_sign_in_failures="2/15 minutes",
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            for _ in range(2):
                assert_problem(sign_in(client, BOB.uid, "wrong-1"), 401, "invalid_credentials")
            limited = sign_in(client, BOB.uid, BOB.password)
            assert_problem(limited, 429, "rate_limited")
            assert int(limited.headers["retry-after"]) > 0
            # another username is not affected
            assert sign_in(client, ALICE.uid, ALICE.password).status_code == 200


class TestCognitoAccount:
    def test_existing_self_signed_up_account_is_taken_over_by_the_directory(
        self, dir_client: TestClient, slapd: Any, cognito: Emulator
    ) -> None:
        from authsvc.dev.slapd import Person
        from tests.directory.conftest import new_uid
        from tests.helpers import sign_in as password_sign_in

        uid = new_uid("claim")
        person = Person(uid, "Claim-pw-1", f"{uid}@corp.example.com", "Claire", "Claim")
        # Someone registered the work address with a password of their own first.
        cognito.client.admin_create_user(
            UserPoolId=cognito.pool.user_pool_id,
            Username=person.mail,
            MessageAction="SUPPRESS",
            TemporaryPassword="Temp-pass-1!",
            UserAttributes=[
                {"Name": "email", "Value": person.mail},
                {"Name": "family_name", "Value": "Other"},
            ],
        )
        cognito.client.admin_set_user_password(
            UserPoolId=cognito.pool.user_pool_id,
            Username=person.mail,
            Password="Squatter-pw-1!",
            Permanent=True,
        )
        old = password_sign_in(dir_client, person.mail, "Squatter-pw-1!")
        slapd.add(person)
        assert sign_in(dir_client, person.uid, person.password).status_code == 200
        # The old password and its sessions are dead; the directory owns the account now.
        again = dir_client.post(
            "/v1/auth/sign-in", json={"email": person.mail, "password": "Squatter-pw-1!"}
        )
        assert_problem(again, 401, "invalid_credentials")
        assert_problem(dir_client.get("/v1/auth/session", headers=old.bearer), 401, "invalid_token")
        user = cognito.client.admin_get_user(
            UserPoolId=cognito.pool.user_pool_id, Username=person.mail
        )
        attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
        assert attributes["family_name"] == "Claim"  # mapped from the directory

    def test_group_left_in_the_directory_is_removed_in_cognito(
        self, dir_client: TestClient, slapd: Any, cognito: Emulator
    ) -> None:
        from ldap3 import MODIFY_DELETE

        from authsvc.dev.slapd import GROUP_BASE, USER_BASE

        person, dn = new_engineer(slapd, "grp", "Gus", "Group")
        uid = person.uid
        conn = slapd._admin()
        first = sign_in(dir_client, uid, person.password).json()
        assert "engineering" in claims(first["access_token"])["cognito:groups"]
        conn.modify(f"cn=engineering,{GROUP_BASE}", {"member": [(MODIFY_DELETE, [dn])]})
        conn.unbind()
        second = sign_in(dir_client, uid, person.password).json()
        assert "engineering" not in claims(second["access_token"]).get("cognito:groups", [])
        # the token that still carried the group is revoked
        bearer = {"Authorization": f"Bearer {first['access_token']}"}
        assert_problem(dir_client.get("/v1/auth/session", headers=bearer), 401, "invalid_token")
        assert USER_BASE in dn


class TestMapsThePoolRefuses:
    """The operator's maps name what the pool lacks: the directory's data, not the request,
    is at fault, so the caller gets 502 (never a 400 naming a body field it did not send,
    nor a 404), and the log says which setting to fix."""

    @pytest.mark.parametrize(
        ("overrides", "expected"),
        [
            ({"directory_attribute_map": {"sn": "custom:no_such_attribute"}}, "unknown_attribute"),
            ({"directory_group_map": {"engineering": "no-such-group"}}, "not_found"),
        ],
    )
    def test_a_map_the_pool_refuses_is_an_upstream_error(
        self,
        cognito: Emulator,
        database_url: str,
        slapd: Any,
        directory_client_id: str,
        caplog: pytest.LogCaptureFixture,
        overrides: dict[str, Any],
        expected: str,
    ) -> None:
        from fastapi.testclient import TestClient as Client

        from authsvc.main import create_app
        from tests.directory.conftest import directory_settings

        person, _ = new_engineer(slapd, "map", "Mo", "Map")
        uid = person.uid
        settings = directory_settings(
            cognito, database_url, slapd, directory_client_id, **overrides
        )
        with Client(create_app(settings), raise_server_exceptions=False) as client:
            body = assert_problem(sign_in(client, uid, person.password), 502, "upstream_error")
        assert "errors" not in body
        assert any(
            "AUTHSVC_DIRECTORY_ATTRIBUTE_MAP" in r.getMessage() and expected in r.getMessage()
            for r in caplog.records
        ), [r.getMessage() for r in caplog.records]
