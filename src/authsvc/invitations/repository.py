"""All queries on ``invitation``."""

from __future__ import annotations

import builtins
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, literal, or_, select, tuple_, update
from sqlalchemy.orm import Session

from authsvc.invitations.models import ACCEPTED, EXPIRED, PENDING, REVOKED, Invitation


class InvitationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, invitation: Invitation) -> None:
        self.session.add(invitation)
        self.session.flush()

    def get(self, id: uuid.UUID, *, for_update: bool = False) -> Invitation | None:
        # for_update: hold the row until commit, so a claim cannot slip in between a
        # read-check-write (revoke, resend) and its commit.
        return self.session.get(Invitation, id, with_for_update=for_update or None)

    def by_token_hash(self, token_hash: str) -> Invitation | None:
        return self.session.scalars(
            select(Invitation).where(Invitation.token_hash == token_hash)
        ).first()

    def pending_for(self, email: str) -> Invitation | None:
        return self.session.scalars(
            select(Invitation).where(Invitation.email == email, Invitation.status == PENDING)
        ).first()

    def list(
        self,
        *,
        now: datetime,
        status: str | None,
        email: str | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> builtins.list[Invitation]:
        query = select(Invitation)
        if email is not None:
            query = query.where(Invitation.email == email)
        if status == PENDING:
            query = query.where(Invitation.status == PENDING, Invitation.expires_at > now)
        elif status == EXPIRED:
            query = query.where(
                or_(
                    Invitation.status == EXPIRED,
                    and_(Invitation.status == PENDING, Invitation.expires_at <= now),
                )
            )
        elif status is not None:
            query = query.where(Invitation.status == status)
        if after is not None:
            created_at, id = after
            # A row-value comparison: Postgres turns it into one index range on
            # (created_at, id), so a page deep in the list costs what the first one does
            # (the OR form made it walk every newer entry of the index first).
            query = query.where(
                tuple_(Invitation.created_at, Invitation.id)
                < tuple_(
                    literal(created_at, Invitation.created_at.type),
                    literal(id, Invitation.id.type),
                )
            )
        query = query.order_by(Invitation.created_at.desc(), Invitation.id.desc()).limit(limit)
        return list(self.session.scalars(query))

    def claim(
        self,
        id: uuid.UUID,
        claim_id: uuid.UUID,
        now: datetime,
        until: datetime,
        *,
        token_hash: str | None = None,
    ) -> bool:
        """Take the acceptance lease: one caller wins, whatever the concurrency.

        ``token_hash``: only while the row still has this token (a resend that committed
        since the token was looked up has killed it)."""
        conditions = [
            Invitation.id == id,
            Invitation.status == PENDING,
            Invitation.expires_at > now,
            or_(Invitation.claimed_until.is_(None), Invitation.claimed_until < now),
        ]
        if token_hash is not None:
            conditions.append(Invitation.token_hash == token_hash)
        result = self.session.execute(
            update(Invitation)
            .where(*conditions)
            .values(claim_id=claim_id, claimed_until=until, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def _owned(self, id: uuid.UUID, owner: uuid.UUID, **values: Any) -> bool:
        """Update the row only while ``owner`` holds its acceptance lease."""
        result = self.session.execute(
            update(Invitation)
            .where(Invitation.id == id, Invitation.claim_id == owner, Invitation.status == PENDING)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_user(self, id: uuid.UUID, claim_id: uuid.UUID, sub: str, now: datetime) -> bool:
        return self._owned(id, claim_id, user_sub=sub, updated_at=now)

    def mark_accepted(self, id: uuid.UUID, claim_id: uuid.UUID, sub: str, now: datetime) -> bool:
        return self._owned(
            id,
            claim_id,
            status=ACCEPTED,
            user_sub=sub,
            accepted_at=now,
            updated_at=now,
            claim_id=None,
            claimed_until=None,
        )

    def release(self, id: uuid.UUID, claim_id: uuid.UUID, now: datetime) -> bool:
        return self._owned(id, claim_id, claim_id=None, claimed_until=None, updated_at=now)

    def revoke(self, id: uuid.UUID, now: datetime) -> bool:
        """Revoke a pending row nobody is accepting, in one conditional UPDATE (as ``claim``
        is), so a claim that commits between an admin's read and this write wins on every
        database, SQLite included (where ``FOR UPDATE`` is a no-op). A lapsed claim stays on
        the row: the reconciler then looks for a user that acceptance may have made."""
        result = self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == id,
                Invitation.status == PENDING,
                or_(Invitation.claimed_until.is_(None), Invitation.claimed_until < now),
            )
            .values(status=REVOKED, revoked_at=now, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def attach_orphan(self, id: uuid.UUID, sub: str, now: datetime) -> bool:
        """Point a row that ended (revoked or expired) while its acceptance was running at
        the user that acceptance made, so the reconciler deletes that user."""
        result = self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == id,
                Invitation.status.in_((REVOKED, EXPIRED)),
                Invitation.user_sub.is_(None),
            )
            .values(user_sub=sub, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def abandoned_claims(self, limit: int = 100) -> builtins.list[Invitation]:
        """Rows that ended (revoked or expired) with an acceptance attempt on record and no
        user recorded: that attempt may have created a user before it died."""
        return list(
            self.session.scalars(
                select(Invitation)
                .where(
                    Invitation.status.in_((REVOKED, EXPIRED)),
                    Invitation.user_sub.is_(None),
                    Invitation.claim_id.is_not(None),
                )
                .order_by(Invitation.updated_at)
                .limit(limit)
            )
        )

    def live_for(self, email: str) -> builtins.list[Invitation]:
        """Pending or accepted rows for an email (their users are theirs, not orphans)."""
        return list(
            self.session.scalars(
                select(Invitation).where(
                    Invitation.email == email, Invitation.status.in_((PENDING, ACCEPTED))
                )
            )
        )

    def clear_claim(self, id: uuid.UUID, claim_id: uuid.UUID, now: datetime) -> bool:
        result = self.session.execute(
            update(Invitation)
            .where(Invitation.id == id, Invitation.claim_id == claim_id)
            .values(claim_id=None, claimed_until=None, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def stale_claims(self, now: datetime, limit: int = 100) -> builtins.list[Invitation]:
        return list(
            self.session.scalars(
                select(Invitation)
                .where(Invitation.status == PENDING, Invitation.claimed_until < now)
                .limit(limit)
            )
        )

    def orphaned_users(self, limit: int = 100) -> builtins.list[Invitation]:
        """Revoked or expired invitations that still point at a half-created user."""
        return list(
            self.session.scalars(
                select(Invitation)
                .where(Invitation.status.in_((REVOKED, EXPIRED)), Invitation.user_sub.is_not(None))
                # Least recently looked at first: rows left as they are (a revoked invitation
                # whose account is live) get their updated_at bumped and go to the back.
                .order_by(Invitation.updated_at)
                .limit(limit)
            )
        )

    def expire_pending(self, email: str, now: datetime) -> None:
        self.session.execute(
            update(Invitation)
            .where(
                Invitation.email == email,
                Invitation.status == PENDING,
                Invitation.expires_at <= now,
                or_(Invitation.claimed_until.is_(None), Invitation.claimed_until < now),
            )
            .values(status=EXPIRED, updated_at=now)
            .execution_options(synchronize_session=False)
        )
