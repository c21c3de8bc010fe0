"""Cognito's shapes: attribute lists, a user's ``sub``, a challenge's username, SECRET_HASH."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from typing import Any

Attributes = Mapping[str, str]


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(
        client_secret.encode(), (username + client_id).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class SecretHasher:
    """``secret_hash`` for one app client, keyed once: each call copies the keyed HMAC
    instead of hashing the secret into its inner and outer pads again (issue 12: sign-in)."""

    __slots__ = ("_keyed", "client_id", "client_secret")

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._keyed = hmac.new(client_secret.encode(), digestmod=hashlib.sha256)

    def __call__(self, username: str) -> str:
        mac = self._keyed.copy()
        mac.update((username + self.client_id).encode())
        return base64.b64encode(mac.digest()).decode()


def to_attribute_list(attributes: Attributes) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in attributes.items()]


def from_attribute_list(items: list[dict[str, str]]) -> dict[str, str]:
    return {item["Name"]: item.get("Value", "") for item in items}


def user_sub(user: Mapping[str, Any]) -> str:
    """The ``sub`` of a user as admin_get_user / admin_create_user / list_users return it."""
    attributes = from_attribute_list(user.get("UserAttributes") or user.get("Attributes") or [])
    return attributes.get("sub") or str(user["Username"])


def challenge_username(response: Mapping[str, Any], fallback: str) -> str:
    """Whom Cognito issued a challenge to: the actual username a challenge answer must name.

    Cognito names it ``USER_ID_FOR_SRP`` in every challenge's parameters (for a pool that
    signs in by email, the user's UUID, not the email). moto names it ``USERNAME`` on
    NEW_PASSWORD_REQUIRED and leaves the MFA challenges' parameters empty; there moto takes
    whichever name identifies the user, so the fallback (the name that started the flow)
    does. The strict test layer (tests/strict) shapes parameters as Cognito does.
    """
    parameters = response.get("ChallengeParameters") or {}
    for key in ("USER_ID_FOR_SRP", "USERNAME"):
        value = parameters.get(key)
        if isinstance(value, str) and value:
            return value
    return fallback
