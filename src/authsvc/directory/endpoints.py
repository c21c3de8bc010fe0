"""POST /v1/auth/directory/sign-in, and the periodic directory sync."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response

from authsvc import errors
from authsvc.audit.dependencies import AuditDep
from authsvc.auth import transport
from authsvc.auth.schemas import TokenResult
from authsvc.auth.service import token_identity
from authsvc.dependencies import LimitsDep, RequestContextDep, SettingsDep
from authsvc.directory.dependencies import DirectoryDep, build
from authsvc.directory.schemas import DirectorySignInRequest
from authsvc.email.outbox import Periodic
from authsvc.problems import responses


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    service = build(app)
    interval = app.state.authsvc.settings.directory_sync_interval_seconds
    sync = None
    if service is not None and interval > 0:
        sync = Periodic("directory-sync", service.sync, interval)
        sync.start()
    try:
        yield
    finally:
        if sync is not None:
            sync.stop()


router = APIRouter(prefix="/v1/auth/directory", tags=["auth"], lifespan=lifespan)


@router.post(
    "/sign-in",
    response_model=TokenResult,
    summary="Sign in with corporate directory (LDAP / Active Directory) credentials",
    description=(
        "The directory checks the password; the tokens are ordinary authsvc tokens (refresh,"
        " sign-out, session). A wrong password, an unknown or disabled directory account"
        " answer the same 401 `invalid_credentials`; a directory outage is 503."
    ),
    responses={
        200: {
            "headers": {"Cache-Control": {"description": "no-store", "schema": {"type": "string"}}}
        },
        **responses(
            errors.InvalidCredentialsError,
            errors.NotFoundError,
            *errors.LIMITED_UPSTREAM,
        ),
    },
)
def directory_sign_in(
    body: DirectorySignInRequest,
    request: Request,
    response: Response,
    directory: DirectoryDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
    settings: SettingsDep,
) -> Any:
    username = body.username.strip().lower()
    with audit.track("directory_sign_in", ctx, failure_action="directory_sign_in_failed") as ev:
        # The directory's login name is not the subject's name in the pool: kept aside.
        ev.detail["login"] = username
        limits.hit("sign_in_ip", ctx.ip)
        with limits.failures(
            "sign_in_failures", f"directory:{username}", errors.InvalidCredentialsError
        ):
            result = directory.sign_in(username, body.password, concerns=ev.subject)
        ev.actor, cognito_username, email = token_identity(result)
        ev.subject(cognito_username, email)
        return transport.deliver(request, response, result, settings)
