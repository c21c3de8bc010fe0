"""Helpers for the administration and audit tests: an admin, users made behind the API's
back with boto3 (to get states sign-up cannot reach), and the admin routes' paths."""

from __future__ import annotations

import base64
import hmac
import struct
import time
from collections.abc import Iterator
from typing import Any

import jwt
from fastapi.testclient import TestClient

from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from authsvc.state import AppState
from tests.conftest import make_settings
from tests.helpers import Tokens, confirmed_user, new_email, sign_in

# The outbound Cognito budget (per quota category, per second) off: these tests fire admin
# operations in bursts (disable, delete and set-password each cost three UserUpdate units
# here) that a real account's quota would throttle with 503s that are not the answers under
# test. tests/security covers the budget itself.
NO_BUDGET = {
    f"cognito_budget_{name}": 0
    for name in (
        "user_authentication",
        "user_creation",
        "user_account_recovery",
        "user_read",
        "user_update",
        "user_list",
    )
}

USERS = "/v1/admin/users"
AUDIT = "/v1/admin/audit-events"
TEMPORARY_PASSWORD = "Tempor4ry-Passw0rd!"


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.authsvc  # type: ignore[attr-defined]
    return state


def unthrottled_client(cognito: Any, database_url: str) -> Iterator[TestClient]:
    """The real app in dev mode, as the shared ``app_client``, without the outbound budget."""
    app = create_app(make_settings(cognito, database_url, **NO_BUDGET))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def make_admin(client: TestClient, outbox: DevOutbox, cognito: Any) -> tuple[str, Tokens]:
    """A confirmed user in the admin group, signed in after joining it (tokens carry groups)."""
    email = confirmed_user(client, outbox, email=new_email("admin"))
    cognito.client.admin_add_user_to_group(
        UserPoolId=cognito.pool.user_pool_id, Username=email, GroupName="admin"
    )
    return email, sign_in(client, email)


def claims_of(token: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return claims


def sub_of(tokens: Tokens) -> str:
    return str(claims_of(tokens.access_token)["sub"])


def username_of(cognito: Any, email: str) -> str:
    """Cognito's username (a uuid: the pool signs in by email) for an email address."""
    users = cognito.client.list_users(
        UserPoolId=cognito.pool.user_pool_id, Filter=f'email = "{email}"'
    )["Users"]
    assert len(users) == 1, users
    return str(users[0]["Username"])


def created_by_admin(cognito: Any, email: str, **attributes: str) -> str:
    """A user made with admin_create_user: status FORCE_CHANGE_PASSWORD. Returns the username."""
    attrs = {"email": email, "family_name": "Created", **attributes}
    user = cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        TemporaryPassword=TEMPORARY_PASSWORD,
        MessageAction="SUPPRESS",
        UserAttributes=[{"Name": k, "Value": v} for k, v in attrs.items()],
    )["User"]
    return str(user["Username"])


def user_path(username: str, *rest: str) -> str:
    return "/".join([USERS, username, *rest])


def walk(client: TestClient, admin: Tokens, path: str, **params: Any) -> list[list[dict[str, Any]]]:
    """Every page of a list endpoint, following ``next_cursor`` to the end."""
    pages: list[list[dict[str, Any]]] = []
    cursor: str | None = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = client.get(path, params=query, headers=admin.bearer)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "next_cursor"}
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 1000, "the cursor never ends"


def flat(pages: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [item for page in pages for item in page]


def totp_code(secret: str, at: float) -> str:
    """RFC 6238 (SHA-1, 6 digits, 30 s). pyotp refuses moto's short secret."""
    padded = secret.upper() + "=" * (-len(secret) % 8)
    digest = hmac.new(base64.b32decode(padded), struct.pack(">Q", int(at // 30)), "sha1").digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def enable_totp(cognito: Any, access_token: str) -> None:
    """Turn TOTP MFA on for a user straight at the emulator (moto checks the current step)."""
    secret = cognito.client.associate_software_token(AccessToken=access_token)["SecretCode"]
    if 30 - time.time() % 30 < 3:  # do not send a code about to expire
        time.sleep(30 - time.time() % 30 + 0.1)
    cognito.client.verify_software_token(
        AccessToken=access_token, UserCode=totp_code(secret, time.time())
    )
    cognito.client.set_user_mfa_preference(
        AccessToken=access_token, SoftwareTokenMfaSettings={"Enabled": True, "PreferredMfa": True}
    )
