"""A directory account that is disabled or gone: refused at sign-in, and `directory-sync`
disables it in Cognito and ends its sessions (refresh tokens outlive the directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.dev.slapd import Person, Slapd
from authsvc.main import create_app
from tests.conftest import Emulator
from tests.directory.conftest import directory_settings, new_uid
from tests.helpers import assert_problem


def fresh_person(slapd: Slapd) -> Person:
    uid = new_uid("sync")
    person = Person(uid, "Sync-pw-1", f"{uid}@corp.example.com", "Sync", "User", "Ops")
    slapd.add(person)
    return person


def sign_in(client: TestClient, person: Person) -> dict[str, Any]:
    response = client.post(
        "/v1/auth/directory/sign-in", json={"username": person.uid, "password": person.password}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def cognito_user(cognito: Emulator, person: Person) -> dict[str, Any]:
    user: dict[str, Any] = cognito.client.admin_get_user(
        UserPoolId=cognito.pool.user_pool_id, Username=person.mail
    )
    return user


def assert_signed_out(client: TestClient, tokens: dict[str, Any]) -> None:
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert_problem(client.get("/v1/auth/session", headers=bearer), 401, "invalid_token")
    refresh = client.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_problem(refresh, 401, "invalid_token")


class TestDisabledAccount:
    def test_refused_at_next_sign_in(self, dir_client: TestClient, slapd: Slapd) -> None:
        person = fresh_person(slapd)
        sign_in(dir_client, person)
        slapd.set_disabled(person.uid)
        response = dir_client.post(
            "/v1/auth/directory/sign-in",
            json={"username": person.uid, "password": person.password},
        )
        assert_problem(response, 401, "invalid_credentials")

    def test_sync_disables_and_signs_out(
        self, dir_client: TestClient, slapd: Slapd, cognito: Emulator
    ) -> None:
        person = fresh_person(slapd)
        tokens = sign_in(dir_client, person)
        slapd.set_disabled(person.uid)
        directory = dir_client.app.state.authsvc_directory  # type: ignore[attr-defined]
        counts = directory.sync()
        assert counts["disabled"] >= 1 and counts["errors"] == 0
        assert cognito_user(cognito, person)["Enabled"] is False
        assert_signed_out(dir_client, tokens)

    def test_sync_leaves_active_users_alone(
        self, dir_client: TestClient, slapd: Slapd, cognito: Emulator
    ) -> None:
        person = fresh_person(slapd)
        tokens = sign_in(dir_client, person)
        dir_client.app.state.authsvc_directory.sync()  # type: ignore[attr-defined]
        assert cognito_user(cognito, person)["Enabled"] is True
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
        assert dir_client.get("/v1/auth/session", headers=bearer).status_code == 200


class TestDeletedEntry:
    def test_sync_disables(self, dir_client: TestClient, slapd: Slapd, cognito: Emulator) -> None:
        person = fresh_person(slapd)
        tokens = sign_in(dir_client, person)
        slapd.delete(person.uid)
        dir_client.app.state.authsvc_directory.sync()  # type: ignore[attr-defined]
        assert cognito_user(cognito, person)["Enabled"] is False
        assert_signed_out(dir_client, tokens)

    def test_directory_down_disables_nobody(
        self,
        dir_client: TestClient,
        slapd: Slapd,
        cognito: Emulator,
        database_url: str,
        directory_client_id: str,
    ) -> None:
        person = fresh_person(slapd)
        sign_in(dir_client, person)
        slapd.delete(person.uid)
        down = directory_settings(
            cognito, database_url, slapd, directory_client_id, ldap_url="ldap://127.0.0.1:1"
        )
        from authsvc.directory.service import DirectoryService

        state = dir_client.app.state.authsvc  # type: ignore[attr-defined]
        service = DirectoryService(down, state.gateway, state.pool, state.revocations, state.auth)
        counts = service.sync()
        assert counts["errors"] == 1 and counts["disabled"] == 0
        assert cognito_user(cognito, person)["Enabled"] is True


class TestPeriodicSync:
    def test_app_runs_sync_when_configured(
        self,
        cognito: Emulator,
        database_url: str,
        slapd: Slapd,
        directory_client_id: str,
    ) -> None:
        settings = directory_settings(
            cognito,
            database_url,
            slapd,
            directory_client_id,
            directory_sync_interval_seconds=0.2,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            person = fresh_person(slapd)
            sign_in(client, person)
            slapd.delete(person.uid)
            deadline = time.monotonic() + 20
            while cognito_user(cognito, person)["Enabled"] and time.monotonic() < deadline:
                time.sleep(0.1)
            assert cognito_user(cognito, person)["Enabled"] is False


@pytest.mark.slow
class TestCommand:
    def test_directory_sync_command(
        self,
        dir_client: TestClient,
        dir_settings: Any,
        slapd: Slapd,
        cognito: Emulator,
    ) -> None:
        person = fresh_person(slapd)
        sign_in(dir_client, person)
        slapd.delete(person.uid)
        s = dir_settings
        env = {
            **os.environ,
            "AUTHSVC_COGNITO_REGION": s.cognito_region,
            "AUTHSVC_COGNITO_USER_POOL_ID": s.cognito_user_pool_id,
            "AUTHSVC_COGNITO_CLIENT_ID": s.cognito_client_id,
            "AUTHSVC_COGNITO_ENDPOINT_URL": s.cognito_endpoint_url,
            "AUTHSVC_DATABASE_URL": s.database_url,
            "AUTHSVC_SECRET_KEY": "test-suite-secret-key-0123456789",
            "AUTHSVC_LDAP_URL": s.ldap_url,
            "AUTHSVC_LDAP_CA_FILE": s.ldap_ca_file,
            "AUTHSVC_LDAP_BIND_DN": s.ldap_bind_dn,
            "AUTHSVC_LDAP_BIND_PASSWORD": s.ldap_bind_password.get_secret_value(),
            "AUTHSVC_LDAP_USER_BASE": s.ldap_user_base,
            "AUTHSVC_LDAP_ACTIVE_FILTER": s.ldap_active_filter,
            "AUTHSVC_DIRECTORY_CLIENT_ID": s.directory_client_id,
            "AUTHSVC_DIRECTORY_PROOF_KEY": s.directory_proof_key.get_secret_value(),
            "AUTHSVC_COGNITO_BUDGET_USER_AUTHENTICATION": "0",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        result = subprocess.run(
            [sys.executable, "-m", "authsvc.cli", "directory-sync"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        counts = json.loads(result.stdout.strip().splitlines()[-1])
        assert counts["disabled"] >= 1
        assert cognito_user(cognito, person)["Enabled"] is False

    def test_without_ldap_url_is_a_configuration_error(self, dir_settings: Any) -> None:
        s = dir_settings
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")},
            "AUTHSVC_COGNITO_USER_POOL_ID": s.cognito_user_pool_id,
            "AUTHSVC_COGNITO_CLIENT_ID": s.cognito_client_id,
            "AUTHSVC_SECRET_KEY": "test-suite-secret-key-0123456789",
            "AUTHSVC_DATABASE_URL": "sqlite://",
        }
        result = subprocess.run(
            [sys.executable, "-m", "authsvc.cli", "directory-sync"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2
        assert "AUTHSVC_LDAP_URL" in result.stderr
