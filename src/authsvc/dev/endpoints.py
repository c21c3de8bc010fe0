from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles

from authsvc import errors
from authsvc.dependencies import StateDep
from authsvc.dev import inbox
from authsvc.dev.outbox import OutboxMessage

router = APIRouter(prefix="/dev", tags=["dev"])


@router.get(
    "/outbox",
    response_model=list[OutboxMessage],
    summary="Messages a real deployment would have delivered (dev mode only), newest first",
    description="JSON for scripts; a readable page (grouped by recipient, codes in large"
    " type, links clickable) for a browser that sends `Accept: text/html`.",
    responses={200: {"content": {"text/html": {"schema": {"type": "string"}}}}},
)
def outbox(
    request: Request,
    response: Response,
    state: StateDep,
    to: str | None = Query(
        default=None, max_length=254, description="Only messages to this address"
    ),
    kind: str | None = Query(default=None, max_length=64),
) -> list[OutboxMessage] | HTMLResponse:
    if state.outbox is None:
        raise errors.NotFoundError()
    messages = state.outbox.list(to=to.lower() if to else None, kind=kind)
    if inbox.wants_html(request.headers.get("accept")):
        page = inbox.render(messages, to=to, kind=kind)
        return HTMLResponse(page, headers={"Vary": "Accept", "Cache-Control": "no-store"})
    response.headers["Vary"] = "Accept"
    return messages


def spa_dir() -> Path | None:
    """examples/spa in a checkout (the reference SPA); absent from an installed package."""
    path = Path(__file__).resolve().parents[3] / "examples" / "spa"
    return path if (path / "index.html").is_file() else None


def mount_spa(app: FastAPI) -> None:
    """Serve the example SPA at /dev/spa/ (dev mode only). Invitation links point at
    /dev/spa/accept-invitation#token=…, which is the same page."""
    folder = spa_dir()
    if folder is None:
        return
    index = folder / "index.html"

    @app.get("/dev/spa/accept-invitation", include_in_schema=False)
    async def accept_invitation_page() -> FileResponse:
        return FileResponse(index)

    app.mount("/dev/spa", StaticFiles(directory=folder, html=True), name="spa")
