"""The cross-cutting dependency aliases: app state, settings, the database session, the
caller's identity (and the admin requirement admin routers carry), the request's context,
the rate limits. Each domain keeps its own aliases in its ``dependencies`` module (as its
endpoints keep its routes); this module imports none of the domain packages.
App-wide objects live on ``app.state`` (built in the lifespan).

The accessors are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, and a thread hop per accessor per request is most of what authsvc would add to
a Cognito call. Only ``get_session`` (blocking database I/O) stays synchronous."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from authsvc import errors
from authsvc.clientip import client_ip, joined
from authsvc.cognito.tokens import AccessClaims, RevokedTokenError
from authsvc.config import Settings
from authsvc.context import FAILURE, RequestContext
from authsvc.security.ratelimit import RateLimits
from authsvc.state import AppState


async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.authsvc
    return state


StateDep = Annotated[AppState, Depends(get_state)]


async def get_settings(state: StateDep) -> Settings:
    return state.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(state: StateDep) -> Iterator[Session]:
    yield from state.db.session()


# scope="function": the commit runs before the response is sent, so a failed commit is
# answered with an error instead of a success for data that was never stored.
SessionDep = Annotated[Session, Depends(get_session, scope="function")]

_bearer = HTTPBearer(auto_error=False, description="A Cognito access token.")


async def current_claims(
    request: Request,
    state: StateDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> AccessClaims:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise errors.NotAuthenticatedError()
    token = credentials.credentials
    verifier = state.verifier
    try:
        # Fast path on the event loop when the token was verified before; the first check
        # of a token (RSA, maybe a JWKS fetch) runs in the thread pool.
        if verifier.is_cached(token):
            return verifier.verify_access(token)
        return await run_in_threadpool(verifier.verify_access, token)
    except RevokedTokenError as exc:
        # A genuine token used after its revocation: someone may hold a stolen copy.
        # (Recording is an in-memory append: no I/O on this path.) Once a minute per
        # token: a client retrying a dead token must not turn each request into a row.
        if not _first_use_in_a_while(exc.claims.jti or exc.claims.token):
            raise
        state.audit.record(
            "revoked_token_used",
            outcome=FAILURE,
            actor=exc.claims.sub,
            target=exc.claims.username,
            context=await get_request_context(request, state),
            detail={"code": exc.code, "path": request.url.path},
        )
        raise


_REVOKED_AUDIT_INTERVAL_S = 60.0
_revoked_audited: dict[str, float] = {}


def _first_use_in_a_while(key: str) -> bool:
    now = time.monotonic()
    if _revoked_audited.get(key, 0.0) > now:
        return False
    if len(_revoked_audited) > 10_000:
        _revoked_audited.clear()
    _revoked_audited[key] = now + _REVOKED_AUDIT_INTERVAL_S
    return True


CurrentUser = Annotated[AccessClaims, Depends(current_claims)]


async def require_admin(claims: CurrentUser, settings: SettingsDep) -> None:
    """The admin requirement, set once on each admin router
    (``dependencies=[Depends(require_admin)]``); a route that needs the admin's identity
    takes ``CurrentUser`` (resolved once per request)."""
    if settings.admin_group not in claims.groups:
        raise errors.ForbiddenError("This route needs the admin group.")


async def get_request_context(request: Request, state: StateDep) -> RequestContext:
    return request_context(request, state)


def request_context(request: Request, state: AppState) -> RequestContext:
    return RequestContext(
        ip=client_ip(
            request.client.host if request.client else None,
            joined(request.headers.getlist("x-forwarded-for")),
            state.trusted_proxies,
        ),
        user_agent=request.headers.get("user-agent"),
        request_id=getattr(request.state, "request_id", None),
    )


RequestContextDep = Annotated[RequestContext, Depends(get_request_context)]


async def get_limits(state: StateDep) -> RateLimits:
    return state.limits


LimitsDep = Annotated[RateLimits, Depends(get_limits)]
