from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from authsvc import cursors, errors
from authsvc.audit import schemas
from authsvc.audit.dependencies import AuditDep
from authsvc.audit.repository import AuditRepository
from authsvc.dependencies import SessionDep, require_admin
from authsvc.problems import responses
from authsvc.schemas import Timestamp

router = APIRouter(
    prefix="/v1/admin/audit-events", tags=["admin"], dependencies=[Depends(require_admin)]
)

_ADMIN = errors.ADMIN
ActionName = Annotated[str, Query(pattern=r"^[a-z_]{1,64}$")]


@router.get(
    "",
    response_model=schemas.AuditEventPage,
    summary="The audit log, newest first",
    description=(
        "Events are written within a fraction of a second of the action. Every event names"
        " its subject the same way: `target` is the Cognito username, `target_email` the"
        " email, each when known. The `target` filter takes either: a value with `@` is"
        " matched against `target_email` (in lower case), anything else against `target`."
    ),
    responses=responses(*_ADMIN, errors.InvalidCursorError),
)
def list_audit_events(
    session: SessionDep,
    audit: AuditDep,
    actor: Annotated[str | None, Query(max_length=254)] = None,
    target: Annotated[
        str | None,
        Query(
            max_length=254,
            description="The subject's username, or its email (a value with `@`).",
        ),
    ] = None,
    action: ActionName | None = None,
    since: Timestamp | None = None,
    until: Timestamp | None = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512, pattern=cursors.CURSOR_PATTERN)] = None,
) -> schemas.AuditEventPage:
    audit.flush()  # an admin reading the log sees what just happened
    after = cursors.decode(cursor) if cursor else None
    rows = AuditRepository(session).list(
        actor=actor,
        target=target,
        action=action,
        since=cursors.aware(since) if since else None,
        until=cursors.aware(until) if until else None,
        after=after,
        limit=limit + 1,
    )
    items = [
        schemas.AuditEvent(
            id=row.id,
            occurred_at=cursors.aware(row.occurred_at),
            actor=row.actor,
            action=row.action,
            target=row.target,
            target_email=row.target_email,
            outcome=row.outcome,
            ip=row.ip,
            user_agent=row.user_agent,
            request_id=row.request_id,
            detail=dict(row.detail or {}),
        )
        for row in rows[:limit]
    ]
    last = rows[limit - 1] if len(rows) > limit else None
    return schemas.AuditEventPage(
        items=items, next_cursor=cursors.encode(last.occurred_at, last.id) if last else None
    )
