"""The auth domain's dependency aliases (its endpoints, and profile's and invitations', take
its service; the public sign-in path takes ``PublicCall``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from authsvc.audit.service import AuditLog
from authsvc.auth.service import AuthService
from authsvc.config import Settings
from authsvc.context import RequestContext
from authsvc.dependencies import StateDep, request_context
from authsvc.security.ratelimit import RateLimits
from authsvc.state import AppState


async def get_auth_service(state: StateDep) -> AuthService:
    return state.auth


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]


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
