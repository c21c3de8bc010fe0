"""The transactional outbox: enqueue in the caller's transaction, deliver in a worker.

Delivery is at least once: a message is claimed with a lease, sent, then marked sent; a
worker killed between sending and marking leaves the lease to lapse and the message is sent
again, with the same Message-ID (the outbox row id) so receivers can drop the duplicate.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from authsvc import metrics
from authsvc.db import Database
from authsvc.email.backends import DeliveryError, EmailBackend, Message
from authsvc.email.crypto import PayloadCipher
from authsvc.email.repository import OutboxRepository

log = logging.getLogger("authsvc.email")


def utcnow() -> datetime:
    return datetime.now(UTC)


class Outbox:
    def __init__(self, cipher: PayloadCipher) -> None:
        self.cipher = cipher
        # Called once the enqueuing transaction commits (the worker's doorbell).
        self.on_commit: Callable[[], None] | None = None

    def enqueue(
        self,
        session: Session,
        *,
        kind: str,
        to: str,
        subject: str,
        text: str,
        link: str | None = None,
        code: str | None = None,
    ) -> uuid.UUID:
        """Write the message in ``session``'s transaction: it is sent only if that commits."""
        payload = self.cipher.seal({"subject": subject, "text": text, "link": link, "code": code})
        row = OutboxRepository(session).add(kind=kind, to=to, payload=payload, now=utcnow())
        if self.on_commit is not None:
            callback = self.on_commit
            event.listen(session, "after_commit", lambda _session: callback(), once=True)
        return row.id


class OutboxWorker:
    def __init__(
        self,
        db: Database,
        cipher: PayloadCipher,
        backend: EmailBackend,
        *,
        poll_seconds: float = 1.0,
        max_attempts: int = 8,
        lease_seconds: float = 120.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.backend = backend
        self.poll_seconds = poll_seconds
        self.max_attempts = max_attempts
        self.lease = timedelta(seconds=lease_seconds)
        self.clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0
        self.failed_attempts = 0
        self._backlog: tuple[float, tuple[int, float]] | None = None
        self._backlog_lock = threading.Lock()

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Finish the message in hand, then stop (nothing is left half-recorded)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def wake(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except SQLAlchemyError as exc:
                log.warning("outbox pass failed: %s", type(exc).__name__)
            except Exception:  # noqa: BLE001 - the worker must survive anything
                log.exception("outbox pass crashed")
            self._wake.wait(self.poll_seconds)
            self._wake.clear()

    def backlog(self, max_age: float = 5.0) -> tuple[int, float]:
        """(messages waiting, age of the oldest in seconds), read from the database at most
        once per ``max_age`` seconds (a scrape reads it; requests never do). Raises the
        database's error when it cannot be read."""
        with self._backlog_lock:
            now = time.monotonic()
            if self._backlog is not None and now - self._backlog[0] < max_age:
                return self._backlog[1]
            with self.db.sessions() as session:
                count, oldest = OutboxRepository(session).backlog()
            if oldest is not None and oldest.tzinfo is None:  # SQLite drops the zone
                oldest = oldest.replace(tzinfo=UTC)
            age = max(0.0, (self.clock() - oldest).total_seconds()) if oldest else 0.0
            self._backlog = (now, (count, age))
            return count, age

    # -- one pass -----------------------------------------------------------------------

    def run_once(self, limit: int = 50) -> int:
        """Deliver what is due. Returns how many messages were sent."""
        now = self.clock()
        with self.db.sessions() as session:
            ids = OutboxRepository(session).due_ids(now, limit)
        sent = 0
        for message_id in ids:
            if self._stop.is_set():
                break
            sent += self._deliver(message_id)
        return sent

    def _deliver(self, message_id: uuid.UUID) -> int:
        now = self.clock()
        with self.db.sessions() as session, session.begin():
            repo = OutboxRepository(session)
            if not repo.claim(message_id, now, now + self.lease):
                return 0  # another worker has it
            row = repo.get(message_id)
            assert row is not None
            attempts, kind, to, payload = row.attempts, row.kind, row.to_address, row.payload
        if payload is None:
            with self.db.sessions() as session, session.begin():
                OutboxRepository(session).mark_failed_attempt(
                    message_id, error="no payload", next_attempt_at=None
                )
            return 0
        try:
            data = self.cipher.open(payload)
            message = Message(
                id=str(message_id),
                kind=kind,
                to=to,
                subject=data["subject"],
                text=data["text"],
                link=data.get("link"),
                code=data.get("code"),
            )
            self.backend.send(message)
        except (DeliveryError, ValueError) as exc:
            # A payload this instance cannot decrypt (ValueError: another AUTHSVC_SECRET_KEY,
            # e.g. mid-rotation) is retried like a failed send: an instance with the right
            # key may deliver it. Only running out of attempts gives up.
            retry_at = None
            if attempts + 1 < self.max_attempts:
                backoff = min(2 ** (attempts + 1), 3600) * random.uniform(0.5, 1.0)  # noqa: S311
                retry_at = self.clock() + timedelta(seconds=backoff)
            log.warning(
                "email delivery failed",
                extra={
                    "kind": kind,
                    "attempt": attempts + 1,
                    "error": str(exc),
                    "gave_up": retry_at is None,
                },
            )
            with self.db.sessions() as session, session.begin():
                OutboxRepository(session).mark_failed_attempt(
                    message_id, error=str(exc), next_attempt_at=retry_at
                )
            self.failed_attempts += 1
            metrics.count(
                "authsvc_outbox_delivery_failures", kind, "true" if retry_at is None else "false"
            )
            return 0
        with self.db.sessions() as session, session.begin():
            OutboxRepository(session).mark_sent(message_id, self.clock())
        self.sent += 1
        metrics.count("authsvc_emails_sent", kind)
        log.info("email sent", extra={"kind": kind, "attempt": attempts + 1})
        return 1


class Periodic:
    """Runs ``fn`` every ``interval`` seconds in a daemon thread (the reconciler)."""

    def __init__(self, name: str, fn: Callable[[], object], interval: float) -> None:
        self.name = name
        self.fn = fn
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.fn()
            except Exception:  # noqa: BLE001 - keep the loop alive; the next pass retries
                log.exception("%s pass failed", self.name)
