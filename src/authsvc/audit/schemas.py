from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEvent(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: str | None
    action: str
    target: str | None
    outcome: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    detail: dict[str, Any]


class AuditEventPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None
