from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response, status

from authsvc import errors
from authsvc.dependencies import AuditDep, CurrentUser, LimitsDep, RequestContextDep, StateDep
from authsvc.mfa.schemas import TotpSetup, TotpVerify
from authsvc.mfa.service import MfaService
from authsvc.problems import responses

router = APIRouter(prefix="/v1/me/mfa", tags=["profile"])

_AUTH = errors.AUTH
_UPSTREAM = errors.LIMITED_UPSTREAM


async def get_mfa_service(state: StateDep) -> MfaService:
    return state.mfa


MfaServiceDep = Annotated[MfaService, Depends(get_mfa_service)]


@router.post(
    "/totp",
    response_model=TotpSetup,
    summary="Start TOTP set-up: a secret for an authenticator app",
    description="MFA is not on until a code from the app is verified.",
    responses=responses(*_AUTH, *_UPSTREAM),
)
def start_totp(claims: CurrentUser, mfa: MfaServiceDep) -> TotpSetup:
    return mfa.start_totp(claims)


@router.post(
    "/totp/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Verify a code from the app: turns TOTP MFA on (and preferred)",
    responses=responses(*_AUTH, errors.InvalidCodeError, *_UPSTREAM),
)
def verify_totp(
    body: TotpVerify,
    claims: CurrentUser,
    mfa: MfaServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
) -> Response:
    with audit.track("mfa_enabled", ctx, actor=claims.sub, target=claims.username):
        limits.hit("verify_ip", ctx.ip)
        with limits.failures(
            "code_failures", f"totp:{claims.sub}", errors.InvalidCodeError, errors.ExpiredCodeError
        ):
            mfa.verify_totp(claims, body.code)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn TOTP MFA off",
    responses=responses(*_AUTH, *_UPSTREAM),
)
def disable_totp(
    claims: CurrentUser, mfa: MfaServiceDep, audit: AuditDep, ctx: RequestContextDep
) -> Response:
    with audit.track("mfa_disabled", ctx, actor=claims.sub, target=claims.username):
        mfa.disable_totp(claims)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
