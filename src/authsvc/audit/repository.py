"""All queries on ``audit_event``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import and_, insert, or_, select
from sqlalchemy.orm import Session

from authsvc.audit.models import AuditEvent


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def insert_many(self, rows: list[dict[str, Any]]) -> None:
        if rows:
            self.session.execute(insert(AuditEvent), rows)

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
