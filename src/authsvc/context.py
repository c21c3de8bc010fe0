"""What a request tells the audit log about where it came from, and the outcomes it records.

Shared by the audit log, the top-level dependencies and every domain's endpoints, so it
belongs to none of them."""

from __future__ import annotations

from dataclasses import dataclass

SUCCESS, FAILURE = "success", "failure"


@dataclass(frozen=True, slots=True)
class RequestContext:
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None
