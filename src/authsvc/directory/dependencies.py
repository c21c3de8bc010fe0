"""The directory domain's dependency alias, and the app's one directory service."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, FastAPI, Request

from authsvc.directory.errors import DirectoryNotConfiguredError
from authsvc.directory.service import REFRESH_PREFIX, DirectoryService


def build(app: FastAPI) -> DirectoryService | None:
    """The app's directory service when AUTHSVC_LDAP_URL is set (kept on ``app.state``);
    its refresh tokens are routed to its own app client by /v1/auth/refresh."""
    existing: DirectoryService | None = getattr(app.state, "authsvc_directory", None)
    state = app.state.authsvc
    if existing is None and state.settings.ldap_url:
        existing = DirectoryService(
            state.settings, state.gateway, state.pool, state.revocations, state.auth
        )
        state.auth.refresh_routes[REFRESH_PREFIX] = existing.refresh
        app.state.authsvc_directory = existing
    return existing


async def get_directory(request: Request) -> DirectoryService:
    service = build(request.app)
    if service is None:
        raise DirectoryNotConfiguredError()
    return service


DirectoryDep = Annotated[DirectoryService, Depends(get_directory)]
