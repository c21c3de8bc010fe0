from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from authsvc.schemas import (
    AttributeName,
    AttributeValue,
    Email,
    GroupName,
    Name,
    Password,
    RequestModel,
)

InvitationToken = Annotated[str, StringConstraints(min_length=16, max_length=256)]
Status = Literal["pending", "accepted", "revoked", "expired"]


class InvitationCreate(RequestModel):
    email: Email
    given_name: Name | None = None
    family_name: Name | None = None
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, description="Custom attributes, without the `custom:` prefix."
    )
    groups: list[GroupName] = Field(default_factory=list, max_length=25)


class Invitation(BaseModel):
    id: uuid.UUID
    email: str
    given_name: str | None
    family_name: str | None
    attributes: dict[str, str]
    groups: list[str]
    status: Status = Field(description="`expired` is computed when read.")
    invited_by: str
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None
    revoked_at: datetime | None
    user_sub: str | None


class InvitationPage(BaseModel):
    items: list[Invitation]
    next_cursor: str | None


class TokenRequest(RequestModel):
    token: InvitationToken


class InvitationLookup(BaseModel):
    email: str
    given_name: str | None
    family_name: str | None
    expires_at: datetime


class AcceptRequest(RequestModel):
    token: InvitationToken
    password: Password
    given_name: Name | None = None
    family_name: Name | None = None
    attributes: dict[AttributeName, AttributeValue] = Field(default_factory=dict)
