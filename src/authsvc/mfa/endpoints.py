from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response, status

from authsvc import errors
from authsvc.audit.dependencies import AuditDep
from authsvc.dependencies import CurrentUser, LimitsDep, RequestContextDep
from authsvc.mfa.dependencies import MfaServiceDep
from authsvc.mfa.schemas import Reauthentication, TotpSetup, TotpVerify
from authsvc.problems import responses

router = APIRouter(prefix="/v1/me/mfa", tags=["profile"])

_AUTH = errors.AUTH
_UPSTREAM = errors.LIMITED_UPSTREAM
_REAUTH = (errors.ReauthenticationRequiredError, errors.InvalidCurrentPasswordError)
_REAUTH_NOTE = (
    " Once TOTP is on, replacing it needs a sign-in within `AUTHSVC_REAUTH_MAX_AGE` seconds"
    " (the token's `auth_time`) or `current_password`; the change then ends every session"
    " (this one too) and emails the user a notice."
)


@router.post(
    "/totp",
    response_model=TotpSetup,
    summary="Start TOTP set-up: a secret for an authenticator app",
    description="MFA is not on until a code from the app is verified." + _REAUTH_NOTE,
    responses=responses(*_AUTH, *_REAUTH, *_UPSTREAM),
)
def start_totp(
    claims: CurrentUser,
    mfa: MfaServiceDep,
    limits: LimitsDep,
    ctx: RequestContextDep,
    body: Annotated[Reauthentication | None, Body()] = None,
) -> TotpSetup:
    current = body.current_password if body is not None else None
    if current is not None:
        limits.hit("verify_ip", ctx.ip)
    return mfa.start_totp(claims, current)


@router.post(
    "/totp/verify",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Verify a code from the app: turns TOTP MFA on (and preferred)",
    description="Turns TOTP on, or replaces the authenticator when it is on." + _REAUTH_NOTE,
    responses=responses(*_AUTH, *_REAUTH, errors.InvalidCodeError, *_UPSTREAM),
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
            mfa.verify_totp(claims, body.code, body.current_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.delete(
    "/totp",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn TOTP MFA off",
    description=(
        "Needs a sign-in within `AUTHSVC_REAUTH_MAX_AGE` seconds (the token's `auth_time`) or"
        " `{current_password}`; ends every session (this one too) and emails the user a notice."
    ),
    responses=responses(*_AUTH, *_REAUTH, *_UPSTREAM),
)
def disable_totp(
    claims: CurrentUser,
    mfa: MfaServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
    body: Annotated[Reauthentication | None, Body()] = None,
) -> Response:
    current = body.current_password if body is not None else None
    with audit.track("mfa_disabled", ctx, actor=claims.sub, target=claims.username):
        if current is not None:
            limits.hit("verify_ip", ctx.ip)
        mfa.disable_totp(claims, current)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
