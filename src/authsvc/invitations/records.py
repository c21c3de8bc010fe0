"""Invitation records: tokens and their hashes, an invitation's status and its schema, the
saga's steps and the snapshot it works from."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import UTC, datetime, timedelta

from authsvc.cursors import aware
from authsvc.invitations import schemas
from authsvc.invitations.models import EXPIRED, PENDING, Invitation

# How far a Cognito user's creation date may sit before the claim that made it (clocks).
CLOCK_SKEW = timedelta(seconds=5)

SAGA_STEPS = (
    "claimed",
    "user_created",
    "user_recorded",
    "groups_added",
    "signed_in",
    "password_set",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def temporary_password() -> str:
    # Random, never stored, logged or returned; meets any sane policy by construction.
    return secrets.token_urlsafe(24) + "Aa1!"


def status_of(invitation: Invitation, now: datetime) -> str:
    if invitation.status == PENDING and aware(invitation.expires_at) <= now:
        return EXPIRED
    return invitation.status


def to_schema(invitation: Invitation, now: datetime) -> schemas.Invitation:
    return schemas.Invitation(
        id=invitation.id,
        email=invitation.email,
        given_name=invitation.given_name,
        family_name=invitation.family_name,
        attributes=dict(invitation.attributes or {}),
        groups=list(invitation.groups or []),
        status=status_of(invitation, now),
        invited_by=invitation.invited_by,
        created_at=aware(invitation.created_at),
        expires_at=aware(invitation.expires_at),
        accepted_at=aware(invitation.accepted_at) if invitation.accepted_at else None,
        revoked_at=aware(invitation.revoked_at) if invitation.revoked_at else None,
        user_sub=invitation.user_sub,
    )


class _Snapshot:
    __slots__ = ("email", "groups", "id", "user_sub")

    def __init__(self, id: uuid.UUID, email: str, groups: list[str], user_sub: str | None) -> None:
        self.id = id
        self.email = email
        self.groups = groups
        self.user_sub = user_sub
