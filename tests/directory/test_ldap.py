"""Search-then-bind over StartTLS and LDAPS against slapd; every way it must refuse."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from authsvc import errors
from authsvc.dev.slapd import Slapd, make_certificates
from authsvc.directory.errors import DirectoryUnavailableError
from authsvc.directory.ldap import LdapDirectory
from authsvc.main import create_app
from tests.conftest import Emulator
from tests.directory.conftest import PEOPLE, directory_settings
from tests.helpers import assert_problem

ALICE = PEOPLE[0]


@pytest.fixture
def settings_for(
    cognito: Emulator, database_url: str, slapd: Slapd, directory_client_id: str
) -> Any:
    def make(**overrides: Any) -> Any:
        return directory_settings(cognito, database_url, slapd, directory_client_id, **overrides)

    return make


@pytest.fixture(scope="session")
def wrong_ca(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("ca")) / "other-ca.pem"
    path.write_bytes(make_certificates().ca_pem)
    return str(path)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class TestTransports:
    def test_start_tls(self, settings_for: Any, slapd: Slapd) -> None:
        entry = LdapDirectory(settings_for(ldap_url=slapd.ldap_url)).authenticate(
            ALICE.uid, ALICE.password
        )
        assert entry.email == ALICE.mail
        assert entry.attributes["custom:test_attribute1"] == "R&D"
        assert entry.groups == {"engineering"}

    def test_ldaps(self, settings_for: Any, slapd: Slapd) -> None:
        entry = LdapDirectory(settings_for(ldap_url=slapd.ldaps_url)).authenticate(
            ALICE.uid, ALICE.password
        )
        assert entry.dn == f"uid={ALICE.uid},ou=people,dc=example,dc=com"

    def test_plain_ldap_without_start_tls_is_refused_at_start(
        self, settings_for: Any, slapd: Slapd
    ) -> None:
        with pytest.raises(ValidationError, match="AUTHSVC_LDAP_START_TLS"):
            settings_for(ldap_url=slapd.ldap_url, ldap_start_tls=False)

    def test_server_without_tls_fails_closed(self, settings_for: Any, plain_slapd: Slapd) -> None:
        directory = LdapDirectory(
            settings_for(
                ldap_url=plain_slapd.ldap_url, ldap_bind_password=plain_slapd.service_password
            )
        )
        with pytest.raises(DirectoryUnavailableError):
            directory.authenticate(ALICE.uid, ALICE.password)

    @pytest.mark.parametrize("scheme", ["ldap", "ldaps"])
    def test_wrong_ca_is_refused(
        self, settings_for: Any, slapd: Slapd, wrong_ca: str, scheme: str
    ) -> None:
        url = slapd.ldap_url if scheme == "ldap" else slapd.ldaps_url
        directory = LdapDirectory(settings_for(ldap_url=url, ldap_ca_file=wrong_ca))
        with pytest.raises(DirectoryUnavailableError):
            directory.authenticate(ALICE.uid, ALICE.password)

    def test_certificate_for_another_host_is_refused(self, settings_for: Any) -> None:
        other = Slapd(PEOPLE[:1], cert_host="127.0.0.2").start()
        try:
            for url in (other.ldap_url, other.ldaps_url):
                directory = LdapDirectory(
                    settings_for(
                        ldap_url=url,
                        ldap_ca_file=str(other.ca_file),
                        ldap_bind_password=other.service_password,
                    )
                )
                with pytest.raises(DirectoryUnavailableError):
                    directory.authenticate(ALICE.uid, ALICE.password)
        finally:
            other.stop()

    def test_wrong_ca_is_503_at_the_api(self, settings_for: Any, wrong_ca: str) -> None:
        app = create_app(settings_for(ldap_ca_file=wrong_ca))
        with TestClient(app, raise_server_exceptions=False) as client:
            response = client.post(
                "/v1/auth/directory/sign-in",
                json={"username": ALICE.uid, "password": ALICE.password},
            )
        assert_problem(response, 503, "upstream_unavailable")
        assert response.headers["retry-after"]


class TestRefusals:
    @pytest.fixture
    def directory(self, settings_for: Any) -> LdapDirectory:
        return LdapDirectory(settings_for())

    def test_wrong_password(self, directory: LdapDirectory) -> None:
        with pytest.raises(errors.InvalidCredentialsError):
            directory.authenticate(ALICE.uid, "wrong-password")

    def test_unknown_user(self, directory: LdapDirectory) -> None:
        with pytest.raises(errors.InvalidCredentialsError):
            directory.authenticate("no-such-user", ALICE.password)

    def test_disabled_entry(self, directory: LdapDirectory) -> None:
        with pytest.raises(errors.InvalidCredentialsError):
            directory.authenticate("carol", "Carol-pw-1")

    @pytest.mark.parametrize("username", ["*", "al*", "alice)(uid=*", "*)(|(uid=*", "alice)"])
    def test_filter_injection(self, directory: LdapDirectory, username: str) -> None:
        with pytest.raises(errors.InvalidCredentialsError):
            directory.authenticate(username, ALICE.password)

    def test_empty_password_is_refused_before_any_connection(self, settings_for: Any) -> None:
        # Nothing listens there: a connection attempt would be a 503, not a 401.
        directory = LdapDirectory(settings_for(ldap_url=f"ldap://127.0.0.1:{closed_port()}"))
        with pytest.raises(errors.InvalidCredentialsError):
            directory.authenticate(ALICE.uid, "")
        with pytest.raises(DirectoryUnavailableError):
            directory.authenticate(ALICE.uid, ALICE.password)

    def test_wrong_service_password_is_unavailable_not_invalid_credentials(
        self, settings_for: Any
    ) -> None:
        directory = LdapDirectory(settings_for(ldap_bind_password="not-the-service-password"))
        with pytest.raises(DirectoryUnavailableError):
            directory.authenticate(ALICE.uid, ALICE.password)

    def test_directory_down_is_unavailable(self, settings_for: Any) -> None:
        directory = LdapDirectory(settings_for(ldap_url=f"ldaps://127.0.0.1:{closed_port()}"))
        with pytest.raises(DirectoryUnavailableError):
            directory.authenticate(ALICE.uid, ALICE.password)


class TestLookup:
    def test_find_by_email(self, settings_for: Any) -> None:
        directory = LdapDirectory(settings_for())
        found = directory.find_by_email(ALICE.mail)
        assert found is not None and found.dn.startswith("uid=alice,")
        assert directory.find_by_email("carol@corp.example.com") is None  # disabled
        assert directory.find_by_email("*") is None


class TestSettings:
    @pytest.mark.parametrize(
        ("overrides", "message"),
        [
            ({"ldap_url": "http://dir.example.com"}, "AUTHSVC_LDAP_URL"),
            ({"ldap_user_filter": "(uid=alice)"}, "AUTHSVC_LDAP_USER_FILTER"),
            ({"directory_client_id": None}, "AUTHSVC_DIRECTORY_CLIENT_ID"),
            ({"directory_proof_key": "too-short"}, "AUTHSVC_DIRECTORY_PROOF_KEY"),
        ],
    )
    def test_bad_configuration_fails_at_start(
        self, settings_for: Any, overrides: dict[str, Any], message: str
    ) -> None:
        with pytest.raises(ValidationError, match=message):
            settings_for(**overrides)

    def test_rotation_document_signs_with_current(self, settings_for: Any) -> None:
        current, previous = "c" * 40, "p" * 40
        settings = settings_for(
            directory_proof_key=f'{{"current": "{current}", "previous": "{previous}"}}'
        )
        assert settings.directory_proof_keys == [current, previous]
