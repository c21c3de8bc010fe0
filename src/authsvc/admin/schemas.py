from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from authsvc.profile.schemas import Profile
from authsvc.schemas import AttributeName, AttributeValue, Name, Password, RequestModel

UserStatus = Literal[
    "CONFIRMED",
    "UNCONFIRMED",
    "FORCE_CHANGE_PASSWORD",
    "RESET_REQUIRED",
    "ARCHIVED",
    "COMPROMISED",
    "UNKNOWN",
    "EXTERNAL_PROVIDER",
    "disabled",
]
Username = Annotated[str, StringConstraints(pattern=r"^[\w+=,.@-]{1,128}$")]
EmailPrefix = Annotated[str, StringConstraints(pattern=r"^[^\"\\\s]{1,254}$")]


class AdminUser(Profile):
    status: str = Field(description="Cognito user status (CONFIRMED, FORCE_CHANGE_PASSWORD, …)")
    enabled: bool
    groups: list[str]
    mfa_enabled: bool
    created_at: datetime
    updated_at: datetime


class AdminUserSummary(Profile):
    status: str
    enabled: bool
    created_at: datetime
    updated_at: datetime


class AdminUserPage(BaseModel):
    items: list[AdminUserSummary]
    next_cursor: str | None


class AdminUserUpdate(RequestModel):
    given_name: Name | None = None
    family_name: Name | None = None
    # Strict: JSON `0` or `"yes"` is not a boolean (pydantic would coerce them).
    email_verified: StrictBool | None = None
    attributes: dict[AttributeName, AttributeValue | None] = Field(default_factory=dict)


class SetPasswordRequest(RequestModel):
    password: Password
    permanent: StrictBool = Field(
        description="false: a temporary password the user must change at next sign-in"
    )
