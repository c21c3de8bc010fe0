"""The outbox worker, audit writer and invitation reconciler start once the database schema
is at Alembic's head.

Before issue 16, an instance started on a database that was never migrated (or one it could
not reach) ran them anyway, and each logged the same SQLAlchemy error every pass. (The
revocation poller and the sign-out retries start regardless: they guard tokens, and they
log a failure once, not every pass.) Now the workers wait: the start-up check
(`authsvc serve`, checks.py) says once to run `authsvc migrate`, /readyz answers 503 naming
`migrations behind`, and this gate re-reads ``alembic_version`` quietly until it is at head.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from authsvc import migrate

log = logging.getLogger("authsvc.startup")


class SchemaGate:
    def __init__(
        self, engine: Engine, start: Callable[[], None], *, poll_seconds: float = 2.0
    ) -> None:
        self._engine = engine
        self._start = start
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.opened = False
        self.reason: str | None = None

    def open(self) -> None:
        """Start the workers now when the schema is at head; otherwise wait in a thread."""
        if self._ready():
            self._open()
            return
        log.info(
            "background workers (outbox delivery, audit writer, invitation reconciler) wait"
            " for the database: %s",
            self.reason,
        )
        self._thread = threading.Thread(target=self._run, name="schema-gate", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """No worker starts after this returns (the app's shutdown stops those started)."""
        with self._lock:
            self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _ready(self) -> bool:
        try:
            with self._engine.connect() as conn:
                state = migrate.schema_state(conn)
        except SQLAlchemyError as exc:
            self.reason = f"unreachable ({type(exc).__name__})"
            return False
        if state.behind:
            self.reason = state.describe()
            return False
        return True

    def _open(self) -> None:
        self.opened = True
        self._start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            if self._ready():
                with self._lock:
                    if self._stop.is_set():
                        return  # shut down while the schema was being read: start nothing
                    log.info("database ready (schema at head): background workers started")
                    self._open()
                return
