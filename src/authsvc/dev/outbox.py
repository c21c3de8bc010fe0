"""The dev outbox: every message a real deployment would deliver, kept for a person to read.

Dev mode only. Messages are printed to the console (the one place codes may be logged)
and listed at ``GET /dev/outbox``, newest first.
"""

from __future__ import annotations

import sys
import threading
from collections import deque
from datetime import UTC, datetime
from typing import TextIO

from pydantic import BaseModel


class OutboxMessage(BaseModel):
    to: str
    subject: str
    kind: str
    body: str
    code: str | None = None
    link: str | None = None
    sent_at: datetime


class DevOutbox:
    def __init__(self, *, capacity: int = 500, stream: TextIO | None = None) -> None:
        self._messages: deque[OutboxMessage] = deque(maxlen=capacity)
        self._lock = threading.Lock()
        self._stream = stream

    def deliver(
        self,
        *,
        to: str,
        subject: str,
        kind: str,
        body: str,
        code: str | None = None,
        link: str | None = None,
    ) -> OutboxMessage:
        message = OutboxMessage(
            to=to,
            subject=subject,
            kind=kind,
            body=body,
            code=code,
            link=link,
            sent_at=datetime.now(UTC),
        )
        with self._lock:
            self._messages.appendleft(message)
        stream = self._stream or sys.stdout
        extra = f" code={code}" if code else (f" link={link}" if link else "")
        print(
            f"[dev outbox] to={to} kind={kind} subject={subject!r}{extra}", file=stream, flush=True
        )
        return message

    def list(self, *, to: str | None = None, kind: str | None = None) -> list[OutboxMessage]:
        with self._lock:
            items = list(self._messages)
        return [m for m in items if (to is None or m.to == to) and (kind is None or m.kind == kind)]


_shared: dict[str, DevOutbox] = {}
_shared_lock = threading.Lock()


def shared_outbox(database_url: str) -> DevOutbox:
    """The one dev outbox of every app in this process that queues email in ``database_url``.

    Queued email lives in the database, and any app's outbox worker on that database may
    claim and deliver it. With one outbox per app, a message queued by one app could land
    in another's inbox (the suite runs several apps on one database); shared, it is listed
    wherever it was queued, whichever worker delivered it.
    """
    with _shared_lock:
        box = _shared.get(database_url)
        if box is None:
            box = _shared[database_url] = DevOutbox()
        return box
