"""Issue 16 item 2: `authsvc create-admin` makes the first admin in the pool (moto over
HTTP, the command run as a subprocess); the admin then signs in through the app."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.conftest import Emulator
from tests.helpers import new_email
from tests.operations.support import env_for, run

pytestmark = pytest.mark.slow


def _password(stdout: str) -> str:
    [line] = [line for line in stdout.splitlines() if "temporary password" in line]
    return line.rsplit(": ", 1)[1]


def _groups(cognito: Emulator, email: str) -> list[str]:
    username = cognito.client.admin_get_user(UserPoolId=cognito.pool.user_pool_id, Username=email)[
        "Username"
    ]
    groups = cognito.client.admin_list_groups_for_user(
        UserPoolId=cognito.pool.user_pool_id, Username=username
    )["Groups"]
    return [group["GroupName"] for group in groups]


def test_printed_password_signs_in_to_new_password_required(
    tmp_path: Path, cognito: Emulator, client: TestClient
) -> None:
    email = new_email("first-admin")
    result = run(
        "create-admin",
        "--email",
        email.upper(),  # normalised, like every email authsvc handles
        "--given-name",
        "Ada",
        "--print-password",
        env=env_for(cognito),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    password = _password(result.stdout)
    assert result.stdout.count(password) == 1  # shown once
    user = cognito.client.admin_get_user(UserPoolId=cognito.pool.user_pool_id, Username=email)
    attributes = {a["Name"]: a["Value"] for a in user["UserAttributes"]}
    assert attributes["email"] == email
    assert attributes["email_verified"] == "true"
    assert attributes["family_name"] == "Admin"
    assert attributes["given_name"] == "Ada"
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    assert _groups(cognito, email) == ["admin"]

    response = client.post("/v1/auth/sign-in", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "challenge"
    assert body["challenge"] == "NEW_PASSWORD_REQUIRED"
    answered = client.post(
        "/v1/auth/challenge",
        json={
            "challenge": "NEW_PASSWORD_REQUIRED",
            "session": body["session"],
            "new_password": "Adm1n-Chosen-Passw0rd!",
            "email": email,
        },
    )
    assert answered.status_code == 200, answered.text
    tokens = answered.json()
    session = client.get(
        "/v1/auth/session", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert session.status_code == 200
    assert "admin" in session.json()["groups"]
    users = client.get(
        "/v1/admin/users", headers={"Authorization": f"Bearer {tokens['access_token']}"}
    )
    assert users.status_code == 200, users.text


def test_default_lets_cognito_email_the_password(tmp_path: Path, cognito: Emulator) -> None:
    email = new_email("emailed-admin")
    result = run("create-admin", "--email", email, env=env_for(cognito), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Cognito emailed a temporary password" in result.stdout
    assert "temporary password (shown once)" not in result.stdout
    assert _groups(cognito, email) == ["admin"]


def test_existing_user_keeps_its_password_and_becomes_admin(
    tmp_path: Path, cognito: Emulator
) -> None:
    email = new_email("existing")
    pool = cognito.pool.user_pool_id
    cognito.client.admin_create_user(
        UserPoolId=pool,
        Username=email,
        TemporaryPassword="Existing-Passw0rd!",
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "family_name", "Value": "X"}],
    )
    assert _groups(cognito, email) == []
    result = run(
        "create-admin", "--email", email, "--print-password", env=env_for(cognito), cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "already exists" in result.stdout
    assert "temporary password" not in result.stdout
    assert _groups(cognito, email) == ["admin"]
    again = run("create-admin", "--email", email, env=env_for(cognito), cwd=tmp_path)
    assert again.returncode == 0
    assert _groups(cognito, email) == ["admin"]


def test_missing_group_is_explained_and_creates_nobody(tmp_path: Path, cognito: Emulator) -> None:
    email = new_email("nogroup")
    env = env_for(cognito, admin_group="no-such-group")
    result = run("create-admin", "--email", email, env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("authsvc create-admin: pool ")
    assert "AUTHSVC_ADMIN_GROUP" in result.stderr
    assert "Traceback" not in result.stderr
    found = cognito.client.list_users(
        UserPoolId=cognito.pool.user_pool_id, Filter=f'email = "{email}"'
    )["Users"]
    assert found == []


def test_needs_the_pool_settings_only(tmp_path: Path) -> None:
    result = run("create-admin", "--email", "a@example.com", env=env_for(), cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert [line.split(":")[2].strip() for line in lines] == ["AUTHSVC_COGNITO_USER_POOL_ID"], lines
