"""All queries on ``audit_event``."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, insert, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from authsvc.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        """Rows already stored (a batch retried after its commit went through but the answer
        was lost) are skipped, not refused: the event id is the key."""
        if not rows:
            return
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            stmt: Any = postgresql.insert(AuditEvent).on_conflict_do_nothing(index_elements=["id"])
        elif dialect == "sqlite":
            stmt = sqlite.insert(AuditEvent).on_conflict_do_nothing(index_elements=["id"])
        else:  # pragma: no cover - authsvc runs on Postgres or SQLite
            stmt = insert(AuditEvent)
        self.session.execute(stmt, rows)

    def known_subjects(
        self, emails: Collection[str], usernames: Collection[str]
    ) -> list[tuple[str, str, datetime]]:
        """Every (username, email) pair earlier events named for these emails or usernames,
        with when it was last named. One query."""
        if not emails and not usernames:
            return []
        matches = []
        if emails:
            matches.append(AuditEvent.target_email.in_(sorted(emails)))
        if usernames:
            matches.append(AuditEvent.target.in_(sorted(usernames)))
        query = (
            select(AuditEvent.target, AuditEvent.target_email, func.max(AuditEvent.occurred_at))
            .where(
                AuditEvent.target.is_not(None),
                AuditEvent.target_email.is_not(None),
                or_(*matches),
            )
            .group_by(AuditEvent.target, AuditEvent.target_email)
        )
        return [(str(u), str(e), at) for u, e, at in self.session.execute(query)]

    def list(
        self,
        *,
        actor: str | None,
        target: str | None,
        action: str | None,
        since: datetime | None,
        until: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[AuditEvent]:
        query = select(AuditEvent)
        if actor is not None:
            query = query.where(AuditEvent.actor == actor)
        if target is not None:
            # One person, however the caller names them: an email is matched against
            # target_email, anything else against the username.
            if "@" in target:
                query = query.where(AuditEvent.target_email == target.strip().lower())
            else:
                query = query.where(AuditEvent.target == target)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        if since is not None:
            query = query.where(AuditEvent.occurred_at >= since)
        if until is not None:
            query = query.where(AuditEvent.occurred_at < until)
        if after is not None:
            at, id = after
            query = query.where(
                or_(
                    AuditEvent.occurred_at < at,
                    and_(AuditEvent.occurred_at == at, AuditEvent.id < id),
                )
            )
        query = query.order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc()).limit(limit)
        return list(self.session.scalars(query))
