"""Opaque keyset cursors: ``(timestamp, uuid)`` of the last item, base64url JSON."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import UTC, datetime

from authsvc import errors

# Every cursor is base64url without padding: the query parameter says so (and checks it).
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"


def aware(value: datetime) -> datetime:
    """SQLite gives naive datetimes back; every stored time is UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def encode(at: datetime, id: uuid.UUID) -> str:
    raw = json.dumps([aware(at).isoformat(), str(id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        at, id = json.loads(raw)
        if not isinstance(at, str) or not isinstance(id, str):
            raise ValueError("cursor parts must be strings")
        return aware(datetime.fromisoformat(at)), uuid.UUID(id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError, AttributeError):
        raise errors.InvalidCursorError() from None
