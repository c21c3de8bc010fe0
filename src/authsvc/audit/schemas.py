from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEvent(BaseModel):
    id: uuid.UUID
    occurred_at: datetime
    actor: str | None
    action: str
    target: str | None = Field(description="The subject's Cognito username, when known.")
    target_email: str | None = Field(description="The subject's email, when known.")
    outcome: str
    ip: str | None
    user_agent: str | None
    request_id: str | None
    detail: dict[str, Any]


class AuditEventPage(BaseModel):
    items: list[AuditEvent]
    next_cursor: str | None
