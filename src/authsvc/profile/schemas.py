from __future__ import annotations

from pydantic import BaseModel, Field

from authsvc.schemas import AttributeName, AttributeValue, Name, Password, RequestModel


class Profile(BaseModel):
    username: str = Field(description="Cognito's stable user id (used in admin paths).")
    sub: str
    email: str
    email_verified: bool
    given_name: str | None = None
    family_name: str | None = None
    attributes: dict[str, str] = Field(
        default_factory=dict, description="Custom attributes, without the `custom:` prefix."
    )


class Me(Profile):
    """The signed-in user's own profile."""

    mfa_enabled: bool = Field(description="TOTP MFA is on.")


class ProfileUpdate(RequestModel):
    given_name: Name | None = None
    family_name: Name | None = None
    attributes: dict[AttributeName, AttributeValue | None] = Field(
        default_factory=dict,
        description="Custom attributes to set (null clears one). Only mutable, writable ones.",
    )


class ChangePasswordRequest(RequestModel):
    current_password: Password
    new_password: Password
