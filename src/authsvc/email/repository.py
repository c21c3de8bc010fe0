"""All queries on ``email_outbox``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session

from authsvc.email.models import FAILED, QUEUED, SENDING, SENT, EmailOutbox


class OutboxRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, *, kind: str, to: str, payload: str, now: datetime) -> EmailOutbox:
        row = EmailOutbox(
            id=uuid.uuid4(),
            kind=kind,
            to_address=to,
            payload=payload,
            status=QUEUED,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        self.session.add(row)
        return row

    def _due(self, now: datetime):  # type: ignore[no-untyped-def]
        return or_(
            and_(EmailOutbox.status == QUEUED, EmailOutbox.next_attempt_at <= now),
            and_(EmailOutbox.status == SENDING, EmailOutbox.lease_until < now),
        )

    def backlog(self) -> tuple[int, datetime | None]:
        """How many messages wait to be delivered (queued or in a lease), and the oldest's
        creation time."""
        count, oldest = self.session.execute(
            select(func.count(), func.min(EmailOutbox.created_at)).where(
                EmailOutbox.status.in_((QUEUED, SENDING))
            )
        ).one()
        return int(count), oldest

    def due_ids(self, now: datetime, limit: int) -> list[uuid.UUID]:
        rows = self.session.execute(
            select(EmailOutbox.id)
            .where(self._due(now))
            .order_by(EmailOutbox.next_attempt_at)
            .limit(limit)
        )
        return [r for (r,) in rows]

    def claim(self, id: uuid.UUID, now: datetime, lease_until: datetime) -> bool:
        result = self.session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == id, self._due(now))
            .values(status=SENDING, lease_until=lease_until)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def get(self, id: uuid.UUID) -> EmailOutbox | None:
        return self.session.get(EmailOutbox, id)

    def mark_sent(self, id: uuid.UUID, now: datetime) -> None:
        self.session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == id)
            .values(
                status=SENT,
                sent_at=now,
                payload=None,
                lease_until=None,
                attempts=EmailOutbox.attempts + 1,
                last_error=None,
            )
            .execution_options(synchronize_session=False)
        )

    def mark_failed_attempt(
        self, id: uuid.UUID, *, error: str, next_attempt_at: datetime | None
    ) -> None:
        values: dict[str, object] = {
            "attempts": EmailOutbox.attempts + 1,
            "last_error": error[:500],
            "lease_until": None,
        }
        if next_attempt_at is None:
            values.update(status=FAILED, payload=None)
        else:
            values.update(status=QUEUED, next_attempt_at=next_attempt_at)
        self.session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    def release(self, id: uuid.UUID) -> None:
        """Hand a claimed message back (shutdown before it was sent)."""
        self.session.execute(
            update(EmailOutbox)
            .where(EmailOutbox.id == id, EmailOutbox.status == SENDING)
            .values(status=QUEUED, lease_until=None)
            .execution_options(synchronize_session=False)
        )
