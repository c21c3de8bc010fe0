"""A real directory (Debian's slapd on loopback, its own CA) and an app wired to it.

moto does not run Lambda triggers and refuses CUSTOM_AUTH on admin_initiate_auth:
``authsvc.dev.custom_auth.install`` patches two moto functions
(``moto.cognitoidp.models.CognitoIdpBackend.admin_initiate_auth`` and
``CognitoIdpBackend.admin_respond_to_auth_challenge``, moto pinned at 5.2.5 in the test
extras) so CUSTOM_AUTH runs authsvc's own trigger handlers. The patch lives in the dev layer
because `authsvc dev` needs the same routing; ``moto_with_custom_auth`` applies it here and
checks the pinned version first.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.dev import custom_auth
from authsvc.dev.directory import ensure_group, provision_directory
from authsvc.dev.emulator import default_template_path, load_template
from authsvc.dev.slapd import (
    ACTIVE_FILTER,
    GROUP_BASE,
    SERVICE_DN,
    USER_BASE,
    Person,
    Slapd,
    slapd_path,
)
from authsvc.main import create_app
from tests.conftest import IN_CI, Emulator, make_settings

PEOPLE = [
    Person(
        "alice", "Alice-pw-1", "alice@corp.example.com", "Alice", "Anders", "R&D", ("engineering",)
    ),
    Person("bob", "Bob-pw-1", "bob@corp.example.com", "Bob", "Berg", "Sales"),
    Person("carol", "Carol-pw-1", "carol@corp.example.com", "Carol", "Cole", disabled=True),
    # Same password as alice: a filter injection that reached the directory would match.
    Person("amy", "Alice-pw-1", "amy@corp.example.com", "Amy", "Ash"),
    Person("nomail", "Nomail-pw-1", "", "No", "Mail"),
]
PROOF_KEY = "test-proof-key-" + "k" * 40
ATTRIBUTE_MAP = {
    "givenName": "given_name",
    "sn": "family_name",
    "departmentNumber": "custom:test_attribute1",
}


def _need_slapd() -> None:
    if slapd_path() is None:
        message = "slapd is not installed: apt-get install slapd ldap-utils (.ci/run does)"
        if IN_CI:
            pytest.fail(message + " — required under CI=true")
        pytest.skip(message)


@pytest.fixture(scope="session")
def slapd() -> Iterator[Slapd]:
    _need_slapd()
    people = [p for p in PEOPLE if p.mail] + [Person("nomail", "Nomail-pw-1", "", "No", "Mail")]
    server = Slapd(people).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_slapd() -> Iterator[Slapd]:
    """A directory with no TLS at all: StartTLS must fail closed."""
    _need_slapd()
    server = Slapd(PEOPLE[:2], tls=False).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def moto_with_custom_auth() -> None:
    import moto

    assert moto.__version__ == custom_auth.PINNED_MOTO, (
        "src/authsvc/dev/custom_auth.py wraps moto internals checked against "
        f"{custom_auth.PINNED_MOTO}; re-check it before moving the pin"
    )
    custom_auth.install([PROOF_KEY])


@pytest.fixture(scope="session")
def directory_client_id(cognito: Emulator, moto_with_custom_auth: None) -> str:
    template = load_template(default_template_path())
    client_id = provision_directory(cognito.client, template, cognito.pool.user_pool_id)
    ensure_group(cognito.client, cognito.pool.user_pool_id, "engineering")
    return client_id


def directory_settings(
    cognito: Emulator, database_url: str, slapd: Slapd, client_id: str, **overrides: Any
) -> Any:
    values: dict[str, Any] = {
        "ldap_url": slapd.ldap_url,
        "ldap_ca_file": str(slapd.ca_file),
        "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": slapd.service_password,
        "ldap_user_base": USER_BASE,
        "ldap_group_base": GROUP_BASE,
        "ldap_active_filter": ACTIVE_FILTER,
        "ldap_timeout_seconds": 3,
        "directory_client_id": client_id,
        "directory_proof_key": PROOF_KEY,
        "directory_attribute_map": ATTRIBUTE_MAP,
        "directory_group_map": {"engineering": "engineering"},
        "cors_origins": ["http://spa.example.test"],
    }
    values.update(overrides)
    return make_settings(cognito, database_url, **values)


@pytest.fixture(scope="session")
def dir_settings(
    cognito: Emulator, database_url: str, slapd: Slapd, directory_client_id: str
) -> Any:
    return directory_settings(cognito, database_url, slapd, directory_client_id)


@pytest.fixture(scope="session")
def dir_client(dir_settings: Any) -> Iterator[TestClient]:
    with TestClient(create_app(dir_settings), raise_server_exceptions=False) as client:
        yield client


def new_uid(tag: str = "u") -> str:
    return f"{tag}{secrets.token_hex(5)}"
