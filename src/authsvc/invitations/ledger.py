"""The invitation ledger: creating, listing, resending and revoking invitations, looking
one up by its token, and the helpers the acceptance saga and the repairs share."""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authsvc import cursors, errors
from authsvc.auth.service import AuthService
from authsvc.cognito.errors import UnknownUserError
from authsvc.cognito.gateway import CognitoGateway
from authsvc.cognito.gateway import user_sub as sub_of_user
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import AccessClaims
from authsvc.config import Settings
from authsvc.cursors import aware
from authsvc.db import Database
from authsvc.email.outbox import Outbox
from authsvc.invitations import schemas
from authsvc.invitations.models import ACCEPTED, PENDING, REVOKED, Invitation
from authsvc.invitations.records import (
    hash_token,
    new_token,
    status_of,
    to_schema,
    utcnow,
)
from authsvc.invitations.repository import InvitationRepository

log = logging.getLogger("authsvc.invitations")


class InvitationLedger:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        gateway: CognitoGateway,
        pool: PoolInfoCache,
        outbox: Outbox,
        auth: AuthService,
    ) -> None:
        self.settings = settings
        self.db = db
        self.gateway = gateway
        self.pool = pool
        self.outbox = outbox
        self.auth = auth
        self.ttl = timedelta(hours=settings.invitation_ttl_hours)
        self.lease = timedelta(seconds=settings.invitation_claim_lease_seconds)
        # Tests replace this to crash the saga between steps.
        self.fault: Callable[[str], None] = lambda _step: None

    # -- admin --------------------------------------------------------------------------

    def create(
        self, session: Session, actor: AccessClaims, body: schemas.InvitationCreate
    ) -> schemas.Invitation:
        self._check_profile(body.given_name, body.family_name, body.attributes)
        self._check_groups(body.groups)
        try:
            existing = self.gateway.admin_get_user(body.email)
        except UnknownUserError:
            pass
        else:
            # An unconfirmed sign-up proves nothing about who holds the mailbox (anyone can
            # register any address): the invitation takes it over at acceptance.
            if existing.get("UserStatus") != "UNCONFIRMED":
                raise errors.ConflictError("An account with this email already exists.")
        now = utcnow()
        repo = InvitationRepository(session)
        repo.expire_pending(body.email, now)
        if repo.pending_for(body.email) is not None:
            raise errors.ConflictError("A pending invitation for this email already exists.")
        token = new_token()
        invitation = Invitation(
            id=uuid.uuid4(),
            email=body.email,
            given_name=body.given_name,
            family_name=body.family_name,
            attributes=dict(body.attributes),
            groups=list(dict.fromkeys(body.groups)),
            status=PENDING,
            token_hash=hash_token(token),
            invited_by=actor.sub,
            created_at=now,
            updated_at=now,
            expires_at=now + self.ttl,
        )
        try:
            with session.begin_nested():
                repo.add(invitation)
        except IntegrityError:
            raise errors.ConflictError(
                "A pending invitation for this email already exists."
            ) from None
        self._send(session, invitation, token)
        return to_schema(invitation, now)

    def list(
        self,
        session: Session,
        *,
        status: str | None,
        email: str | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.InvitationPage:
        now = utcnow()
        after = cursors.decode(cursor) if cursor else None
        rows = InvitationRepository(session).list(
            now=now, status=status, email=email, after=after, limit=limit + 1
        )
        items = [to_schema(row, now) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        next_cursor = cursors.encode(last.created_at, last.id) if last is not None else None
        return schemas.InvitationPage(items=items, next_cursor=next_cursor)

    def get(self, session: Session, id: uuid.UUID) -> schemas.Invitation:
        return to_schema(self._find(session, id), utcnow())

    def resend(self, session: Session, id: uuid.UUID) -> schemas.Invitation:
        invitation = self._find(session, id, lock=True)
        now = utcnow()
        if invitation.status in (ACCEPTED, REVOKED):
            raise errors.ConflictError(f"The invitation is {invitation.status}.")
        if invitation.claimed_until is not None and aware(invitation.claimed_until) > now:
            raise errors.ConflictError("The invitation is being accepted.")
        token = new_token()
        invitation.token_hash = hash_token(token)
        invitation.status = PENDING
        invitation.expires_at = now + self.ttl
        invitation.updated_at = now
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise errors.ConflictError(
                "Another pending invitation exists for this email."
            ) from None
        self._send(session, invitation, token)
        return to_schema(invitation, now)

    def revoke(self, session: Session, id: uuid.UUID) -> None:
        invitation = self._find(session, id, lock=True)
        now = utcnow()
        if invitation.status == REVOKED:
            return
        if invitation.status == ACCEPTED:
            raise errors.ConflictError("The invitation was accepted: disable the user instead.")
        if invitation.claimed_until is not None and aware(invitation.claimed_until) > now:
            raise errors.ConflictError("The invitation is being accepted; retry shortly.")
        if invitation.user_sub is not None:
            # An earlier acceptance got as far as a working account (its password is set):
            # revoking the ledger row would leave that account unlinked but alive.
            existing = self._user_or_none(invitation.email)
            if (
                existing is not None
                and sub_of_user(existing) == invitation.user_sub
                and existing.get("UserStatus") != "FORCE_CHANGE_PASSWORD"
            ):
                raise errors.ConflictError(
                    "The invitee's account already exists: disable or delete the user instead."
                )
        if not InvitationRepository(session).revoke(invitation.id, now):
            # Changed since it was read (an accept claimed it, or it ended): say what it is.
            session.refresh(invitation)
            if invitation.status == REVOKED:
                return
            if invitation.status == ACCEPTED:
                raise errors.ConflictError("The invitation was accepted: disable the user instead.")
            raise errors.ConflictError("The invitation is being accepted; retry shortly.")
        session.expire(invitation)

    # -- public -------------------------------------------------------------------------

    def lookup(self, session: Session, token: str) -> schemas.InvitationLookup:
        invitation = self._live(session, token, utcnow())
        return schemas.InvitationLookup(
            email=invitation.email,
            given_name=invitation.given_name,
            family_name=invitation.family_name,
            expires_at=aware(invitation.expires_at),
        )

    # -- helpers ------------------------------------------------------------------------

    def _find(self, session: Session, id: uuid.UUID, *, lock: bool = False) -> Invitation:
        invitation = InvitationRepository(session).get(id, for_update=lock)
        if invitation is None:
            raise errors.NotFoundError("No invitation with this id.")
        return invitation

    def _live(self, session: Session, token: str, now: datetime) -> Invitation:
        invitation = InvitationRepository(session).by_token_hash(hash_token(token))
        if invitation is None or status_of(invitation, now) != PENDING:
            raise errors.InvalidInvitationError()
        return invitation

    def _release(self, id: uuid.UUID, claim_id: uuid.UUID) -> None:
        try:
            with self.db.sessions() as session, session.begin():
                InvitationRepository(session).release(id, claim_id, utcnow())
        except Exception:  # noqa: BLE001 - the lease lapses by itself
            log.warning("could not release invitation claim; it lapses after the lease")

    def _user_or_none(self, email: str) -> dict[str, Any] | None:
        try:
            return self.gateway.admin_get_user(email)
        except UnknownUserError:
            return None

    def _check_groups(self, groups: builtins.list[str]) -> None:
        unknown: builtins.list[errors.FieldIssue] = []
        exists: dict[str, bool] = {}  # one GetGroup per name, however often it is listed
        for index, group in enumerate(groups):
            if group not in exists:
                try:
                    self.gateway.get_group(group)
                    exists[group] = True
                except errors.NotFoundError:
                    exists[group] = False
            if not exists[group]:
                unknown.append(
                    (["body", "groups", index], f"The user pool has no group named {group}.")
                )
        if unknown:
            detail = " ".join(dict.fromkeys(msg for _, msg in unknown))  # each group once
            raise errors.UnknownGroupError(detail, issues=unknown)

    def _check_profile(
        self, given_name: str | None, family_name: str | None, attributes: dict[str, str]
    ) -> None:
        self._check_profile_values(
            {"given_name": given_name, "family_name": family_name, **attributes}
        )

    def _check_profile_values(self, values: dict[str, str | None]) -> dict[str, str]:
        # The schema keeps email, email_verified and sub out of `attributes`.
        present = {k: v for k, v in values.items() if v is not None}
        return self.pool.get().writable_attributes(present, creating=True)

    def _send(self, session: Session, invitation: Invitation, token: str) -> None:
        link = f"{self.settings.public_app_url}/accept-invitation#token={token}"
        expires = aware(invitation.expires_at).strftime("%Y-%m-%d %H:%M UTC")
        greeting = f"Hello {invitation.given_name}," if invitation.given_name else "Hello,"
        text = (
            f"{greeting}\n\nYou have been invited to create an account.\n"
            f"Open this link to choose your password:\n\n{link}\n\n"
            f"The link works once and expires on {expires}.\n"
        )
        self.outbox.enqueue(
            session,
            kind="invitation",
            to=invitation.email,
            subject="You're invited",
            text=text,
            link=link,
        )
