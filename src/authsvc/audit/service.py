"""The audit log: recorded in memory on the request path, written in batches off it.

``record`` only appends to a bounded buffer; a background thread inserts what is there
every ``flush_interval`` seconds. A slow or unavailable database never slows a sign-in:
if the buffer fills up (the database has been down for a while), the oldest entries are
dropped and counted in ``dropped``. Shutdown flushes what is left.

Every event names its subject the same way: ``target`` is the Cognito username,
``target_email`` the email. A caller passes what it knows; the writer fills in the other
name (``subjects.fill``: at most one query per batch).
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from authsvc.audit import subjects
from authsvc.audit.repository import AuditRepository
from authsvc.context import FAILURE, SUCCESS, RequestContext
from authsvc.db import UNAVAILABLE, Database
from authsvc.errors import AuthSvcError

__all__ = ["FAILURE", "SUCCESS", "AuditLog", "RequestContext", "Tracked"]

log = logging.getLogger("authsvc.audit")


@dataclass(slots=True)
class Tracked:
    """What an endpoint learns while the action runs (e.g. the actor after a sign-in)."""

    actor: str | None
    target: str | None
    target_email: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def subject(self, username: str | None, email: str | None) -> None:
        """Name the subject as far as known (a name already set is kept when not known)."""
        self.target = username or self.target
        self.target_email = email or self.target_email


class AuditLog:
    def __init__(
        self,
        db: Database,
        *,
        enabled: bool = True,
        flush_interval: float = 0.2,
        capacity: int = 50_000,
        batch_size: int = 500,
    ) -> None:
        self.db = db
        self.enabled = enabled
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self._buffer: deque[dict[str, Any]] = deque()
        self._capacity = capacity
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.dropped = 0
        self.written = 0
        self.write_failures = 0
        self.lookups = 0  # subject look-ups: at most one per written batch
        self.subjects = subjects.SubjectMap()

    # -- recording (request path: no I/O) -----------------------------------------------

    def record(
        self,
        action: str,
        *,
        outcome: str = SUCCESS,
        actor: str | None = None,
        target: str | None = None,
        target_email: str | None = None,
        context: RequestContext | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """``target`` is the subject's Cognito username, ``target_email`` its email; an
        email passed as ``target`` (an admin path may name a user by email) is taken as such."""
        if not self.enabled:
            return
        context = context or RequestContext()
        if target is not None and "@" in target:
            target, target_email = None, target_email or target
        if target_email is not None:
            target_email = target_email.strip().lower() or None
        row = {
            "id": uuid.uuid4(),
            "occurred_at": datetime.now(UTC),
            "actor": actor,
            "action": action,
            "target": target,
            "target_email": target_email,
            "outcome": outcome,
            "ip": context.ip,
            "user_agent": (context.user_agent or "")[:512] or None,
            "request_id": context.request_id,
            "detail": detail or {},
        }
        with self._lock:
            if len(self._buffer) >= self._capacity:
                self._buffer.popleft()
                self.dropped += 1
            self._buffer.append(row)

    @contextmanager
    def track(
        self,
        action: str,
        context: RequestContext,
        *,
        actor: str | None = None,
        target: str | None = None,
        target_email: str | None = None,
        failure_action: str | None = None,
    ) -> Iterator[Tracked]:
        """Record ``action`` when the block succeeds, or its failure (with the error code)."""
        tracked = Tracked(actor=actor, target=target, target_email=target_email)
        try:
            yield tracked
        except AuthSvcError as exc:
            self.record(
                failure_action or action,
                outcome=FAILURE,
                actor=tracked.actor,
                target=tracked.target,
                target_email=tracked.target_email,
                context=context,
                detail={**tracked.detail, "code": exc.code},
            )
            raise
        except Exception as exc:
            # The code the client was answered (problems.py): a database outage is a 503.
            code = "upstream_unavailable" if isinstance(exc, UNAVAILABLE) else "internal_error"
            self.record(
                failure_action or action,
                outcome=FAILURE,
                actor=tracked.actor,
                target=tracked.target,
                target_email=tracked.target_email,
                context=context,
                detail={**tracked.detail, "code": code},
            )
            raise
        self.record(
            action,
            actor=tracked.actor,
            target=tracked.target,
            target_email=tracked.target_email,
            context=context,
            detail=tracked.detail,
        )

    # -- writing (background) -----------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval):
            self.flush()

    def pending(self) -> int:
        return len(self._buffer)

    def flush(self) -> int:
        """Write what is buffered; on failure keep it for the next try. Returns rows written."""
        written = 0
        with self._flush_lock:
            while True:
                with self._lock:
                    batch = [
                        self._buffer.popleft()
                        for _ in range(min(self.batch_size, len(self._buffer)))
                    ]
                if not batch:
                    return written
                try:
                    with self.db.sessions() as session, session.begin():
                        repository = AuditRepository(session)
                        self.lookups += subjects.fill(
                            batch, self.subjects, repository.known_subjects
                        )
                        repository.insert_many(batch)
                except SQLAlchemyError as exc:
                    if not isinstance(exc, UNAVAILABLE):
                        # The database refused these rows themselves (not an outage):
                        # retrying would block every later event behind them forever.
                        with self._lock:
                            self.dropped += len(batch)
                        self.write_failures += 1
                        log.error(
                            "audit rows refused by the database, dropped: %s", type(exc).__name__
                        )
                        continue
                    with self._lock:
                        self._buffer.extendleft(reversed(batch))
                        overflow = len(self._buffer) - self._capacity
                        for _ in range(max(0, overflow)):
                            self._buffer.pop()
                            self.dropped += 1
                    self.write_failures += 1
                    log.warning(
                        "audit write failed (%d buffered): %s",
                        len(self._buffer),
                        type(exc).__name__,
                    )
                    return written
                written += len(batch)
                self.written += len(batch)
