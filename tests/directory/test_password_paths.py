"""Directory users have no password path around the directory: forgot/reset send and accept
nothing for them, and /v1/auth/sign-in refuses them like a wrong password."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from authsvc.auth.service import mask_email
from authsvc.dev.slapd import Person
from tests.conftest import Emulator
from tests.directory.conftest import new_uid
from tests.helpers import assert_problem, confirmed_user, new_email

FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"


def directory_user(dir_client: TestClient, slapd: Any, tag: str) -> tuple[Person, dict[str, Any]]:
    uid = new_uid(tag)
    person = Person(uid, "Dir-pw-1", f"{uid}@corp.example.com", "Dee", "Rect")
    slapd.add(person)
    response = dir_client.post(
        "/v1/auth/directory/sign-in", json={"username": uid, "password": person.password}
    )
    assert response.status_code == 200, response.text
    return person, response.json()


class TestForgotPassword:
    def test_no_code_for_a_directory_user_and_the_same_answer(
        self, dir_client: TestClient, slapd: Any
    ) -> None:
        outbox = dir_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
        person, _ = directory_user(dir_client, slapd, "forgot")
        response = dir_client.post(FORGOT, json={"email": person.mail})
        assert response.status_code == 202, response.text
        assert response.json() == {
            "delivery": {"medium": "EMAIL", "destination": mask_email(person.mail)}
        }
        assert outbox.list(to=person.mail, kind="password_reset_code") == []
        # A password user of the same deployment still gets a code.
        email = confirmed_user(dir_client, outbox, email=new_email("pw"))
        assert dir_client.post(FORGOT, json={"email": email}).status_code == 202
        assert len(outbox.list(to=email, kind="password_reset_code")) == 1

    def test_a_code_sent_before_the_directory_claimed_the_account_is_refused(
        self, dir_client: TestClient, slapd: Any
    ) -> None:
        outbox = dir_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
        uid = new_uid("reset")
        person = Person(uid, "Dir-pw-1", f"{uid}@corp.example.com", "Dee", "Rect")
        # A self sign-up with the work address asks for a reset code...
        confirmed_user(dir_client, outbox, email=person.mail)
        assert dir_client.post(FORGOT, json={"email": person.mail}).status_code == 202
        code = outbox.list(to=person.mail, kind="password_reset_code")[0].code
        # ...then the directory claims the account: the code must not set a password now.
        slapd.add(person)
        claimed = dir_client.post(
            "/v1/auth/directory/sign-in", json={"username": uid, "password": person.password}
        )
        assert claimed.status_code == 200, claimed.text
        response = dir_client.post(
            RESET, json={"email": person.mail, "code": code, "new_password": "N3w-Passw0rd!"}
        )
        assert_problem(response, 400, "invalid_code")
        signed_in = dir_client.post(
            "/v1/auth/sign-in", json={"email": person.mail, "password": "N3w-Passw0rd!"}
        )
        assert_problem(signed_in, 401, "invalid_credentials")


class TestPasswordSignIn:
    def test_directory_user_with_a_cognito_password_is_refused_like_a_wrong_password(
        self, dir_client: TestClient, slapd: Any, cognito: Emulator
    ) -> None:
        person, directory_tokens = directory_user(dir_client, slapd, "pwsignin")
        # A Cognito password set behind the directory's back (an admin, or a reset code
        # obtained before the user joined the directory).
        cognito.client.admin_set_user_password(
            UserPoolId=cognito.pool.user_pool_id,
            Username=person.mail,
            Password="Known-pw-1!",
            Permanent=True,
        )
        right = dir_client.post(
            "/v1/auth/sign-in", json={"email": person.mail, "password": "Known-pw-1!"}
        )
        wrong = dir_client.post(
            "/v1/auth/sign-in", json={"email": person.mail, "password": "Wrong-pw-1!"}
        )
        assert_problem(right, 401, "invalid_credentials")
        assert_problem(wrong, 401, "invalid_credentials")
        same = ("type", "title", "status", "detail", "code")
        assert {k: right.json()[k] for k in same} == {k: wrong.json()[k] for k in same}
        # The directory session is untouched: only the password path is closed.
        bearer = {"Authorization": f"Bearer {directory_tokens['access_token']}"}
        assert dir_client.get("/v1/auth/session", headers=bearer).status_code == 200
        again = dir_client.post(
            "/v1/auth/directory/sign-in",
            json={"username": person.uid, "password": person.password},
        )
        assert again.status_code == 200, again.text

    def test_password_users_still_sign_in(self, dir_client: TestClient) -> None:
        outbox = dir_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
        email = confirmed_user(dir_client, outbox, email=new_email("plain"))
        response = dir_client.post(
            "/v1/auth/sign-in", json={"email": email, "password": "Passw0rd!"}
        )
        assert response.status_code == 200, response.text
