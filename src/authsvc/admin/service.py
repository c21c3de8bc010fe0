"""User administration over Cognito's admin operations.

Every action that should end a user's sessions (sign-out, password set, disable, delete,
removal from a group) also records a revocation, so access tokens verified locally die
with the refresh tokens Cognito revokes.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from authsvc import errors
from authsvc.admin import schemas
from authsvc.cognito.errors import UnknownUserError
from authsvc.cognito.gateway import CognitoGateway, from_attribute_list, user_sub
from authsvc.cognito.pool import PoolInfoCache
from authsvc.profile.service import profile_fields
from authsvc.revocation.service import RevocationRegistry

COGNITO_PAGE_MAX = 60  # ListUsers' Limit ceiling


def _when(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return datetime.now(UTC)


def _mfa_enabled(user: dict[str, Any]) -> bool:
    return "SOFTWARE_TOKEN_MFA" in (user.get("UserMFASettingList") or [])


def encode_cursor(token: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"t": token}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        token = data["t"]
        if not isinstance(token, str) or not token:
            raise ValueError
        return token
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        raise errors.InvalidCursorError() from None


class AdminService:
    def __init__(
        self,
        gateway: CognitoGateway,
        pool: PoolInfoCache,
        revocations: RevocationRegistry,
        end_sessions: Callable[[str], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self.pool = pool
        self.revocations = revocations
        # Ends a user's Cognito sessions, queueing a background retry when Cognito fails
        # (AuthService.end_cognito_sessions): the admin's change has already happened, and
        # the local revocation has already killed the access tokens.
        self.end_sessions = end_sessions or gateway.admin_user_global_sign_out

    # -- reads --------------------------------------------------------------------------

    def list_users(
        self, *, email_prefix: str | None, status: str | None, limit: int, cursor: str | None
    ) -> schemas.AdminUserPage:
        # Cognito takes one filter per call: the email prefix when given (the narrower),
        # and the status filter is then applied here.
        local_status: str | None = None
        if email_prefix is not None:
            filter_ = f'email ^= "{email_prefix.lower()}"'
            local_status = status
        elif status == "disabled":
            filter_ = 'status = "Disabled"'
        elif status is not None:
            filter_ = f'cognito:user_status = "{status}"'
        else:
            filter_ = None
        token = decode_cursor(cursor) if cursor else None
        items: list[schemas.AdminUserSummary] = []
        remaining = limit
        while True:
            page = self.gateway.list_users(
                filter_=filter_, limit=min(COGNITO_PAGE_MAX, remaining), token=token
            )
            users = page.get("Users", [])
            token = page.get("PaginationToken")
            for user in users:
                summary = self._summary(user)
                if local_status is None or _matches(summary, local_status):
                    items.append(summary)
            remaining -= len(users)
            if not token or remaining <= 0:
                break
        return schemas.AdminUserPage(
            items=items, next_cursor=encode_cursor(token) if token else None
        )

    def get_user(self, username: str) -> schemas.AdminUser:
        user = self.gateway.admin_get_user(username)
        groups = self.gateway.admin_list_groups_for_user(user["Username"])
        attributes = from_attribute_list(user.get("UserAttributes", []))
        return schemas.AdminUser(
            **profile_fields(user["Username"], attributes),
            status=user.get("UserStatus", "UNKNOWN"),
            enabled=bool(user.get("Enabled", True)),
            groups=groups,
            mfa_enabled=_mfa_enabled(user),
            created_at=_when(user.get("UserCreateDate")),
            updated_at=_when(user.get("UserLastModifiedDate")),
        )

    def sub_of(self, username: str) -> str:
        return user_sub(self.gateway.admin_get_user(username))

    # -- writes -------------------------------------------------------------------------

    def update_user(self, username: str, update: schemas.AdminUserUpdate) -> schemas.AdminUser:
        self.gateway.admin_get_user(username)  # 404 before any validation of values
        values: dict[str, str | None] = {}
        for name in ("given_name", "family_name"):
            if name in update.model_fields_set:
                values[name] = getattr(update, name)
        # The schema keeps the top-level fields (email, sub, ...) out of `attributes`.
        values.update(update.attributes)
        if update.email_verified is not None:
            values["email_verified"] = "true" if update.email_verified else "false"
        if values:
            attributes = self.pool.get().writable_attributes(
                values, allow=frozenset({"email_verified"})
            )
            self.gateway.admin_update_user_attributes(username, attributes)
        return self.get_user(username)

    def delete_user(self, username: str) -> str:
        sub = self.sub_of(username)
        # Revoke locally first: no Cognito fault after this point can leave tokens alive.
        self.revocations.revoke(sub)
        # Delete first: a failing sign-out must not keep the user (deletion ends their
        # sessions at Cognito anyway); then end sessions best-effort.
        self.gateway.admin_delete_user(username)
        self.end_sessions(username)
        return sub

    def set_password(self, username: str, password: str, *, permanent: bool) -> str:
        self.pool.get().policy.check(password)
        sub = self.sub_of(username)
        self.gateway.admin_set_user_password(username, password, permanent=permanent)
        self.revocations.revoke(sub)
        self.end_sessions(username)
        return sub

    def disable(self, username: str) -> str:
        sub = self.sub_of(username)
        self.gateway.admin_disable_user(username)
        self.revocations.revoke(sub)
        # Cognito lets a disabled user's refresh token work until revoked: revoke it.
        self.end_sessions(username)
        return sub

    def enable(self, username: str) -> None:
        self.gateway.admin_get_user(username)
        self.gateway.admin_enable_user(username)

    def sign_out(self, username: str) -> str:
        sub = self.sub_of(username)
        self.revocations.revoke(sub)
        self.end_sessions(username)
        return sub

    def add_to_group(self, username: str, group: str) -> None:
        self.gateway.admin_get_user(username)
        self._group_exists(group)
        self.gateway.admin_add_user_to_group(username, group)

    def remove_from_group(self, username: str, group: str) -> None:
        sub = self.sub_of(username)
        self._group_exists(group)
        self.gateway.admin_remove_user_from_group(username, group)
        # Tokens carry the groups they were issued with: make the user sign in again.
        self.revocations.revoke(sub)
        self.end_sessions(username)

    def disable_mfa(self, username: str) -> None:
        self.gateway.admin_get_user(username)
        self.gateway.admin_disable_totp(username)

    def _group_exists(self, group: str) -> None:
        try:
            self.gateway.get_group(group)
        except (errors.NotFoundError, UnknownUserError):
            raise errors.NotFoundError(f"No group named {group}.") from None

    def _summary(self, user: dict[str, Any]) -> schemas.AdminUserSummary:
        attributes = from_attribute_list(user.get("Attributes", []))
        return schemas.AdminUserSummary(
            **profile_fields(user["Username"], attributes),
            status=user.get("UserStatus", "UNKNOWN"),
            enabled=bool(user.get("Enabled", True)),
            created_at=_when(user.get("UserCreateDate")),
            updated_at=_when(user.get("UserLastModifiedDate")),
        )


def _matches(user: schemas.AdminUserSummary, status: str) -> bool:
    if status == "disabled":
        return not user.enabled
    return user.status == status
