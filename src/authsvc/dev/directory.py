"""The corporate directory in the emulator: the dedicated client, and `authsvc dev`'s slapd.

moto cannot deploy the template's Lambda triggers or create its resources from
CloudFormation: ``provision_directory`` creates the template's ``DirectoryClient`` (and the
directory group) with boto3, as ``emulator.provision`` does for the pool, and
``custom_auth.install`` routes CUSTOM_AUTH through the trigger handlers.
"""

from __future__ import annotations

import atexit
import copy
import secrets
import subprocess
from typing import Any

from authsvc.dev import custom_auth
from authsvc.dev.emulator import ProvisionedPool
from authsvc.dev.provisioning import _pages, find_or_create_client
from authsvc.dev.slapd import (
    ACTIVE_FILTER,
    GROUP_BASE,
    SERVICE_DN,
    USER_BASE,
    Person,
    Slapd,
)

CLIENT_RESOURCE = "DirectoryClient"
GROUP_RESOURCE = "DirectoryGroup"

DEV_PEOPLE = (
    Person(
        "alice", "Alice-dir-1", "alice@corp.example.com", "Alice", "Anders", "R&D", ("engineering",)
    ),
    Person("bob", "Bob-dir-1", "bob@corp.example.com", "Bob", "Berg", "Sales", ()),
)


def provision_directory(client: Any, template: dict[str, Any], pool_id: str) -> str:
    """Create (or find by name) the template's directory app client and group; its id."""
    resources = template["Resources"]
    props = copy.deepcopy(resources[CLIENT_RESOURCE]["Properties"])
    props.pop("UserPoolId", None)
    name = str(props.pop("ClientName", CLIENT_RESOURCE))
    client_id = find_or_create_client(client, pool_id, name, props)
    group = str(resources[GROUP_RESOURCE]["Properties"]["GroupName"])
    ensure_group(client, pool_id, group)
    return client_id


class DevDirectoryError(Exception):
    """`authsvc dev` could not start its directory: one line for the person at the terminal."""


def ensure_group(client: Any, pool_id: str, name: str) -> None:
    groups = {g["GroupName"] for g in _pages(client.list_groups, "Groups", UserPoolId=pool_id)}
    if name not in groups:
        client.create_group(UserPoolId=pool_id, GroupName=name)


def start_dev_directory(
    client: Any, template: dict[str, Any], pool: ProvisionedPool
) -> tuple[Slapd, dict[str, Any]]:
    """slapd seeded with two people, CUSTOM_AUTH routed; the settings that point at them."""
    try:
        directory = Slapd(list(DEV_PEOPLE)).start()
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        reason = " ".join(str(exc).split())[:300] or type(exc).__name__
        raise DevDirectoryError(
            f"AUTHSVC_DEV_DIRECTORY=1 needs slapd: {reason}"
            " (or set AUTHSVC_DEV_SLAPD to its path; unset AUTHSVC_DEV_DIRECTORY to run without)"
        ) from None
    atexit.register(directory.stop)
    client_id = provision_directory(client, template, pool.user_pool_id)
    ensure_group(client, pool.user_pool_id, "engineering")
    key = secrets.token_urlsafe(48)
    custom_auth.install([key])
    settings = {
        "ldap_url": directory.ldap_url,
        "ldap_ca_file": str(directory.ca_file),
        "ldap_bind_dn": SERVICE_DN,
        "ldap_bind_password": directory.service_password,
        "ldap_user_base": USER_BASE,
        "ldap_group_base": GROUP_BASE,
        "ldap_active_filter": ACTIVE_FILTER,
        "directory_client_id": client_id,
        "directory_proof_key": key,
        "directory_attribute_map": {
            "givenName": "given_name",
            "sn": "family_name",
            "departmentNumber": "custom:test_attribute1",
        },
        "directory_group_map": {"engineering": "engineering"},
    }
    return directory, settings


def directory_lines(directory: Slapd | None) -> list[str]:
    """The dev banner's lines for the directory (none when it is off)."""
    if directory is None:
        return []
    people = ", ".join(f"{p.uid} / {p.password}" for p in DEV_PEOPLE)
    return [
        f"  Directory   {directory.ldap_url} (slapd): POST /v1/auth/directory/sign-in",
        f"              {people}",
    ]
