"""Annotated dependency aliases. App-wide objects live on ``app.state`` (built in the lifespan).

The accessors are ``async def`` on purpose: FastAPI runs a plain ``def`` dependency in the
thread pool, and a thread hop per accessor per request is most of what authsvc would add to
a Cognito call. Only ``get_session`` (blocking database I/O) stays synchronous."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from authsvc import errors
from authsvc.audit.service import FAILURE, AuditLog, RequestContext
from authsvc.auth.service import AuthService
from authsvc.clientip import client_ip, joined
from authsvc.cognito.tokens import AccessClaims, RevokedTokenError
from authsvc.config import Settings
from authsvc.invitations.service import InvitationService
from authsvc.profile.service import ProfileService
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


async def admin_claims(claims: CurrentUser, settings: SettingsDep) -> AccessClaims:
    if settings.admin_group not in claims.groups:
        raise errors.ForbiddenError("This route needs the admin group.")
    return claims


AdminUser = Annotated[AccessClaims, Depends(admin_claims)]


async def get_auth_service(state: StateDep) -> AuthService:
    return state.auth


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


async def get_profile_service(state: StateDep) -> ProfileService:
    return state.profile


ProfileServiceDep = Annotated[ProfileService, Depends(get_profile_service)]


async def get_invitation_service(state: StateDep) -> InvitationService:
    return state.invitations


InvitationServiceDep = Annotated[InvitationService, Depends(get_invitation_service)]


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


@dataclass(frozen=True, slots=True)
class PublicCall:
    """What a public (no token) route on the sign-in path uses, from one dependency: each
    dependency FastAPI resolves is ~40 Python calls per request, and sign-in had ten of
    them (issue 12: sign-in overhead)."""

    state: AppState
    ctx: RequestContext

    @property
    def auth(self) -> AuthService:
        return self.state.auth

    @property
    def audit(self) -> AuditLog:
        return self.state.audit

    @property
    def limits(self) -> RateLimits:
        return self.state.limits

    @property
    def settings(self) -> Settings:
        return self.state.settings


async def public_call(request: Request) -> PublicCall:
    state: AppState = request.app.state.authsvc
    return PublicCall(state, request_context(request, state))


PublicCallDep = Annotated[PublicCall, Depends(public_call)]


async def get_audit(state: StateDep) -> AuditLog:
    return state.audit


AuditDep = Annotated[AuditLog, Depends(get_audit)]


async def get_limits(state: StateDep) -> RateLimits:
    return state.limits


LimitsDep = Annotated[RateLimits, Depends(get_limits)]
