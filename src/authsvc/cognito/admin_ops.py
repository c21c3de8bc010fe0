"""The gateway's admin operations (Admin* calls on the pool, groups, listing users)."""

from __future__ import annotations

from typing import Any

from authsvc.cognito.attributes import Attributes, to_attribute_list
from authsvc.cognito.calls import GatewayCalls


class AdminOperations(GatewayCalls):
    def admin_get_user(self, username: str) -> dict[str, Any]:
        return self._call(
            "admin_get_user", "admin_get_user", UserPoolId=self.pool_id, Username=username
        )

    def admin_user_global_sign_out(self, username: str) -> None:
        self._call(
            "admin_user_global_sign_out",
            "admin_user_global_sign_out",
            UserPoolId=self.pool_id,
            Username=username,
        )

    def admin_create_user(
        self, email: str, temporary_password: str, attributes: Attributes
    ) -> dict[str, Any]:
        def took_effect() -> dict[str, Any] | None:
            # Only a user still waiting for its first password can be the one just created;
            # anything else is left to the caller's AccountExistsError handling.
            user = self._user_status(email)
            if user is None or user.get("UserStatus") != "FORCE_CHANGE_PASSWORD":
                return None
            return {"User": {**user, "Attributes": user.get("UserAttributes", [])}}

        result: dict[str, Any] = self._checked(
            "admin_create_user",
            "admin_create_user",
            took_effect,
            UserPoolId=self.pool_id,
            Username=email,
            TemporaryPassword=temporary_password,
            MessageAction="SUPPRESS",
            UserAttributes=to_attribute_list({"email": email, **attributes}),
        )["User"]
        return result

    def admin_set_user_password(self, username: str, password: str, *, permanent: bool) -> None:
        self._call(
            "admin_set_user_password",
            "admin_set_user_password",
            UserPoolId=self.pool_id,
            Username=username,
            Password=password,
            Permanent=permanent,
        )

    def admin_reset_user_password(self, username: str) -> None:
        """RESET_REQUIRED: the password no longer signs in; Cognito emails a reset code to
        the verified address, used with confirm_forgot_password. (Idempotent.)"""
        self._call(
            "admin_reset_user_password",
            "admin_reset_user_password",
            UserPoolId=self.pool_id,
            Username=username,
        )

    def admin_add_user_to_group(self, username: str, group: str) -> None:
        self._call(
            "admin_add_user_to_group",
            "admin_add_user_to_group",
            UserPoolId=self.pool_id,
            Username=username,
            GroupName=group,
        )

    def admin_delete_user(self, username: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            return {} if self._user_status(username) is None else None

        self._checked(
            "admin_delete_user",
            "admin_delete_user",
            took_effect,
            UserPoolId=self.pool_id,
            Username=username,
        )

    def get_group(self, group: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "get_group", "get_group", UserPoolId=self.pool_id, GroupName=group
        )["Group"]
        return result

    def admin_update_user_attributes(self, username: str, attributes: Attributes) -> None:
        self._call(
            "admin_update_user_attributes",
            "admin_update_user_attributes",
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=to_attribute_list(attributes),
        )

    def list_users(self, *, filter_: str | None, limit: int, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"UserPoolId": self.pool_id, "Limit": limit}
        if filter_:
            kwargs["Filter"] = filter_
        if token:
            kwargs["PaginationToken"] = token
        return self._call("list_users", "list_users", **kwargs)

    def admin_list_groups_for_user(self, username: str) -> list[str]:
        groups: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"UserPoolId": self.pool_id, "Username": username, "Limit": 60}
            if token:
                kwargs["NextToken"] = token
            page = self._call("admin_list_groups_for_user", "admin_list_groups_for_user", **kwargs)
            groups.extend(g["GroupName"] for g in page.get("Groups", []))
            token = page.get("NextToken")
            if not token:
                return groups

    def admin_remove_user_from_group(self, username: str, group: str) -> None:
        self._call(
            "admin_remove_user_from_group",
            "admin_remove_user_from_group",
            UserPoolId=self.pool_id,
            Username=username,
            GroupName=group,
        )

    def admin_disable_user(self, username: str) -> None:
        self._call(
            "admin_disable_user", "admin_disable_user", UserPoolId=self.pool_id, Username=username
        )

    def admin_enable_user(self, username: str) -> None:
        self._call(
            "admin_enable_user", "admin_enable_user", UserPoolId=self.pool_id, Username=username
        )

    def admin_disable_totp(self, username: str) -> None:
        self._call(
            "admin_set_user_mfa_preference",
            "admin_set_user_mfa_preference",
            UserPoolId=self.pool_id,
            Username=username,
            SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False},
        )
