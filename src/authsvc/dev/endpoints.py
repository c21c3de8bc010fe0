from __future__ import annotations

from fastapi import APIRouter, Query

from authsvc import errors
from authsvc.dependencies import StateDep
from authsvc.dev.outbox import OutboxMessage

router = APIRouter(prefix="/dev", tags=["dev"])


@router.get(
    "/outbox",
    response_model=list[OutboxMessage],
    summary="Messages a real deployment would have delivered (dev mode only), newest first",
)
def outbox(
    state: StateDep,
    to: str | None = Query(
        default=None, max_length=254, description="Only messages to this address"
    ),
    kind: str | None = Query(default=None, max_length=64),
) -> list[OutboxMessage]:
    if state.outbox is None:
        raise errors.NotFoundError()
    return state.outbox.list(to=to.lower() if to else None, kind=kind)
