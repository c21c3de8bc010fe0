"""`authsvc create-admin`: the first administrator of a real pool (issue 16).

The service cannot create its first admin through its own API (every admin route needs an
admin), so the operator runs this once with AWS credentials that may call AdminCreateUser.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from authsvc.cognito.gateway import make_client
from authsvc.config import Settings


class CreateAdminError(Exception):
    """A failure explained in one line for the operator."""


@dataclass(frozen=True)
class CreatedAdmin:
    username: str
    created: bool  # False: the user existed; only the group membership was ensured
    temporary_password: str | None  # set only with --print-password, shown once


def temporary_password(policy: dict[str, Any]) -> str:
    """A random password that meets the pool's policy (Cognito checks temporary passwords
    against it; moto does not)."""
    length = max(int(policy.get("MinimumLength", 8)), 20)
    # Cognito's symbol set, minus characters that are awkward to paste in a shell.
    symbols = "^$*.[]{}()?!@#%&/,><:;|_~"
    alphabet = string.ascii_letters + string.digits + symbols
    required = [
        secrets.choice(string.ascii_uppercase),
        secrets.choice(string.ascii_lowercase),
        secrets.choice(string.digits),
        secrets.choice(symbols),
    ]
    rest = [secrets.choice(alphabet) for _ in range(length - len(required))]
    chars = required + rest
    secrets.SystemRandom().shuffle(chars)
    return "".join(chars)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def create_admin(
    settings: Settings,
    email: str,
    *,
    given_name: str | None,
    family_name: str,
    print_password: bool,
    client: Any | None = None,
) -> CreatedAdmin:
    client = client or make_client(settings)
    pool_id, group = settings.cognito_user_pool_id, settings.admin_group
    email = email.strip().lower()
    try:
        return _create(client, pool_id, group, email, given_name, family_name, print_password)
    except ClientError as exc:
        code = _code(exc)
        if code == "ResourceNotFoundException":
            raise CreateAdminError(
                f"pool {pool_id} or its group {group!r} does not exist (the template creates"
                " both; check AUTHSVC_COGNITO_USER_POOL_ID and AUTHSVC_ADMIN_GROUP)"
            ) from None
        message = exc.response.get("Error", {}).get("Message", "")
        raise CreateAdminError(f"Cognito refused {exc.operation_name}: {code}: {message}") from None
    except BotoCoreError as exc:
        raise CreateAdminError(f"cannot reach Cognito: {type(exc).__name__}: {exc}") from None


def _create(
    client: Any,
    pool_id: str,
    group: str,
    email: str,
    given_name: str | None,
    family_name: str,
    print_password: bool,
) -> CreatedAdmin:
    # The group must exist before a user is made, or a half-done admin is left behind.
    client.get_group(UserPoolId=pool_id, GroupName=group)
    attributes = [
        {"Name": "email", "Value": email},
        {"Name": "email_verified", "Value": "true"},
        {"Name": "family_name", "Value": family_name},
    ]
    if given_name:
        attributes.append({"Name": "given_name", "Value": given_name})
    kwargs: dict[str, Any] = {
        "UserPoolId": pool_id,
        "Username": email,  # the pool signs in by email (UsernameAttributes); Cognito names it
        "UserAttributes": attributes,
    }
    password: str | None = None
    if print_password:
        policy = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        password = temporary_password(policy.get("Policies", {}).get("PasswordPolicy", {}))
        kwargs.update(TemporaryPassword=password, MessageAction="SUPPRESS")
    else:
        # Cognito generates the temporary password and emails it (its invitation message).
        kwargs["DesiredDeliveryMediums"] = ["EMAIL"]
    try:
        user = client.admin_create_user(**kwargs)["User"]
        username, created = str(user["Username"]), True
    except ClientError as exc:
        if _code(exc) not in {"UsernameExistsException", "AliasExistsException"}:
            raise
        # Already there: keep its password and attributes, make sure it is an admin.
        username = str(client.admin_get_user(UserPoolId=pool_id, Username=email)["Username"])
        created, password = False, None
    # Group calls take the actual username (for an email pool, not the email alias).
    client.admin_add_user_to_group(UserPoolId=pool_id, Username=username, GroupName=group)
    return CreatedAdmin(username=username, created=created, temporary_password=password)
