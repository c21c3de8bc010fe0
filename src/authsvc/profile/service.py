from __future__ import annotations

from typing import Any

from authsvc.cognito.gateway import CognitoGateway, from_attribute_list
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import AccessClaims
from authsvc.profile.schemas import Me, ProfileUpdate


def profile_fields(username: str, attributes: dict[str, str]) -> dict[str, Any]:
    """Cognito attributes → the outside shape: no ``custom:`` prefix anywhere."""
    return {
        "username": username,
        "sub": attributes.get("sub", username),
        "email": attributes.get("email", ""),
        "email_verified": attributes.get("email_verified", "false").lower() == "true",
        "given_name": attributes.get("given_name"),
        "family_name": attributes.get("family_name"),
        "attributes": {
            name.removeprefix("custom:"): value
            for name, value in attributes.items()
            if name.startswith("custom:")
        },
    }


class ProfileService:
    def __init__(self, gateway: CognitoGateway, pool: PoolInfoCache) -> None:
        self.gateway = gateway
        self.pool = pool

    def get(self, claims: AccessClaims) -> Me:
        user = self.gateway.get_user(claims.token)
        return Me(
            **profile_fields(user["Username"], from_attribute_list(user["UserAttributes"])),
            mfa_enabled="SOFTWARE_TOKEN_MFA" in (user.get("UserMFASettingList") or []),
        )

    def update(self, claims: AccessClaims, update: ProfileUpdate) -> Me:
        values: dict[str, str | None] = {}
        for name in ("given_name", "family_name"):
            if name in update.model_fields_set:
                values[name] = getattr(update, name)
        # The schema keeps the top-level fields (email, sub, ...) out of `attributes`.
        values.update(update.attributes)
        if not values:
            return self.get(claims)
        attributes = self.pool.get().writable_attributes(values)
        self.gateway.update_user_attributes(claims.token, attributes)
        return self.get(claims)
