from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Request, Response, status
from fastapi.responses import JSONResponse

from authsvc import errors
from authsvc.audit.dependencies import AuditDep
from authsvc.auth import transport
from authsvc.auth.dependencies import AuthServiceDep, PublicCallDep
from authsvc.auth.schemas import (
    ChallengeRequest,
    ConfirmSignUpRequest,
    DeliveryResponse,
    EmailRequest,
    PasswordResetRequired,
    RefreshRequest,
    ResetPasswordRequest,
    SessionInfo,
    SignInRequest,
    SignInResult,
    SignUpRequest,
    TokenResult,
    session_json,
)
from authsvc.auth.service import delivery_for, token_identity
from authsvc.cognito.errors import PasswordResetRequiredError
from authsvc.dependencies import CurrentUser, LimitsDep, RequestContextDep, SettingsDep
from authsvc.problems import responses

router = APIRouter(prefix="/v1/auth", tags=["auth"])

_UPSTREAM = errors.LIMITED_UPSTREAM
_CODE_FAILURES = (errors.InvalidCodeError, errors.ExpiredCodeError)
_TOKEN_HEADERS: dict[str, Any] = {
    "Cache-Control": {"description": "no-store", "schema": {"type": "string"}}
}


@router.post(
    "/sign-up",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryResponse,
    summary="Register with email and password",
    description="Always 202 with the same body, whether or not the email is registered."
    " 403 `forbidden` when the user pool takes no sign-ups (only administrators and"
    " invitations create accounts).",
    responses=responses(
        errors.InvalidPasswordError, *errors.ATTRIBUTES, errors.ForbiddenError, *_UPSTREAM
    ),
)
def sign_up(
    body: SignUpRequest,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
) -> DeliveryResponse:
    with audit.track("sign_up", ctx, target_email=body.email) as ev:
        limits.hit("email_ip", ctx.ip)
        limits.hit("email_identifier", body.email)
        return auth.sign_up(
            body.email,
            body.password,
            given_name=body.given_name,
            family_name=body.family_name,
            attributes=body.attributes,
            concerns=lambda username: ev.subject(username, body.email),
        )


@router.post(
    "/sign-up/confirm",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Confirm a sign-up with the emailed code",
    description=(
        '204: confirmed. 200 `{next: "reset_password", delivery}`: confirmed, but the address'
        " was registered more than once before confirmation, so no registrant's password is"
        " trusted: a reset code was emailed, and the password is set with it at"
        " `/v1/auth/password/reset` (pre-account hijacking defence)."
    ),
    response_model=None,
    responses={
        200: {"model": PasswordResetRequired, "description": "Confirmed; set a new password"},
        **responses(
            errors.InvalidCodeError, errors.ExpiredCodeError, errors.ConflictError, *_UPSTREAM
        ),
    },
)
def confirm_sign_up(
    body: ConfirmSignUpRequest,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
) -> Response:
    with audit.track("sign_up_confirmed", ctx, target_email=body.email) as ev:
        limits.hit("verify_ip", ctx.ip)
        with limits.failures("sign_up_code_failures", f"confirm:{body.email}", *_CODE_FAILURES):
            reset_required = auth.confirm_sign_up(body.email, body.code)
        if reset_required:
            ev.detail["password_reset_required"] = True
    if reset_required:
        answer = PasswordResetRequired(delivery=delivery_for(body.email).delivery)
        return JSONResponse(answer.model_dump(), status_code=status.HTTP_200_OK)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/sign-up/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryResponse,
    summary="Send a new sign-up code",
    description="Always 202 with the same body, whether or not the email is registered.",
    responses=responses(*_UPSTREAM),
)
def resend_code(
    body: EmailRequest,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
) -> DeliveryResponse:
    with audit.track("sign_up_code_resent", ctx, target_email=body.email):
        limits.hit("email_ip", ctx.ip)
        # Per (email, address), under a ceiling per email: others' requests never use up
        # the owner's.
        limits.hit_spread("resend_identifier", "resend_ceiling", body.email, ctx.ip)
        # Wrong codes count per issued code: new tries only when a new code went out.
        return auth.resend_code(
            body.email,
            code_issued=lambda: limits.reset("sign_up_code_failures", f"confirm:{body.email}"),
        )


@router.post(
    "/sign-in",
    response_model=SignInResult,
    summary="Sign in with email and password",
    description="Answers tokens, or a challenge to complete at `/v1/auth/challenge`.",
    responses={
        200: {"headers": _TOKEN_HEADERS},
        **responses(
            errors.InvalidCredentialsError,
            errors.UserNotConfirmedError,
            PasswordResetRequiredError,
            *_UPSTREAM,
        ),
    },
)
def sign_in(body: SignInRequest, request: Request, response: Response, call: PublicCallDep) -> Any:
    ctx, limits = call.ctx, call.limits
    with call.audit.track(
        "sign_in", ctx, target_email=body.email, failure_action="sign_in_failed"
    ) as ev:
        limits.hit("sign_in_ip", ctx.ip)
        with limits.sign_in_failures(body.email, ctx.ip):
            result = call.auth.sign_in(body.email, body.password)
        if isinstance(result, TokenResult):
            # The email is the one signed in with: only the access token is read (once).
            ev.actor, username, _ = token_identity(result, email=False)
            ev.subject(username, None)
            return transport.deliver(request, response, result, call.settings)
        ev.detail["challenge"] = result.challenge
        return result


@router.post(
    "/challenge",
    response_model=SignInResult,
    summary="Answer a sign-in challenge",
    responses={
        200: {"headers": _TOKEN_HEADERS},
        **responses(
            errors.InvalidSessionError,
            errors.InvalidCodeError,
            errors.InvalidPasswordError,
            *_UPSTREAM,
        ),
    },
)
def challenge(
    body: Annotated[ChallengeRequest, Body()],
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
    settings: SettingsDep,
) -> Any:
    # The audit target is the user the sealed session names, never the body's email.
    with audit.track("challenge_answered", ctx, failure_action="challenge_failed") as ev:
        ev.detail["challenge"] = body.challenge
        limits.hit("verify_ip", ctx.ip)
        sealed = auth.open_challenge(body)
        # Cognito's name for the user when it is not the email alias (SRP's USER_ID_FOR_SRP).
        ev.subject(None if "@" in sealed.username else sealed.username, sealed.email)
        with limits.failures("code_failures", f"mfa:{sealed.email}", *_CODE_FAILURES):
            result = auth.answer_challenge(body, sealed)
        if isinstance(result, TokenResult):
            ev.actor, username, _ = token_identity(result)
            ev.subject(username, None)
            return transport.deliver(request, response, result, settings)
        return result


@router.post(
    "/refresh",
    response_model=TokenResult,
    summary="New access and ID tokens from a refresh token",
    responses={200: {"headers": _TOKEN_HEADERS}, **responses(errors.InvalidTokenError, *_UPSTREAM)},
)
def refresh(
    request: Request,
    response: Response,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
    settings: SettingsDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> TokenResult:
    with audit.track("token_refreshed", ctx, failure_action="token_refresh_failed") as ev:
        ev.detail["transport"] = "body" if body is not None else "cookie"
        limits.hit("refresh_ip", ctx.ip)
        if body is not None:
            token = body.refresh_token
        else:
            cookie = transport.cookie_token(request)
            if cookie is None:
                raise errors.NotAuthenticatedError(
                    "Send {refresh_token}, or the refresh cookie with X-Token-Transport: cookie."
                )
            transport.check_csrf(request, settings)
            token = cookie
        try:
            result = auth.refresh(token)
        except errors.InvalidTokenError as exc:
            if body is None:
                # A dead cookie is of no use to anyone. On the error itself: the problem
                # response is built from the exception, not from `response`.
                exc.headers["Set-Cookie"] = transport.clearing_header()
            raise
        ev.actor, username, email = token_identity(result)
        ev.subject(username, email)
    return transport.deliver(request, response, result, settings, from_cookie=body is None)


@router.post(
    "/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign out everywhere",
    description=(
        "Revokes the refresh tokens at Cognito and every access token issued so far. With"
        " federation configured, the session's refresh token (the cookie, or an optional"
        " `{refresh_token}` body) is also revoked at the hosted UI's `/oauth2/revoke`."
    ),
    responses=responses(errors.NotAuthenticatedError, errors.InvalidTokenError, *_UPSTREAM),
)
def sign_out(
    request: Request,
    claims: CurrentUser,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    settings: SettingsDep,
    body: Annotated[RefreshRequest | None, Body()] = None,
) -> Response:
    cookie_token = transport.cookie_token(request)
    cookie = cookie_token is not None
    if cookie:
        transport.check_csrf(request, settings)
    refresh_token = body.refresh_token if body is not None else cookie_token
    with audit.track("signed_out", ctx, actor=claims.sub, target=claims.username):
        auth.sign_out(claims, refresh_token=refresh_token)
    response = Response(status_code=status.HTTP_204_NO_CONTENT)
    if cookie:
        transport.clear(response)
    return response


@router.post(
    "/password/forgot",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=DeliveryResponse,
    summary="Email a password reset code",
    description="Always 202 with the same body, whether or not the email is registered.",
    responses=responses(*_UPSTREAM),
)
def forgot_password(
    body: EmailRequest,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
) -> DeliveryResponse:
    with audit.track("password_reset_requested", ctx, target_email=body.email):
        limits.hit("email_ip", ctx.ip)
        # Per (email, address), under a ceiling per email: others' requests never use up
        # the owner's.
        limits.hit_spread("forgot_identifier", "forgot_ceiling", body.email, ctx.ip)
        # Wrong codes count per issued code: new tries only when a new code went out.
        return auth.forgot_password(
            body.email, code_issued=lambda: limits.reset("code_failures", f"reset:{body.email}")
        )


@router.post(
    "/password/reset",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a new password with the emailed code",
    description="Signs the user out everywhere.",
    responses=responses(
        errors.InvalidCodeError, errors.ExpiredCodeError, errors.InvalidPasswordError, *_UPSTREAM
    ),
)
def reset_password(
    body: ResetPasswordRequest,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
) -> Response:
    with audit.track("password_reset", ctx, target_email=body.email):
        limits.hit("verify_ip", ctx.ip)
        with limits.failures("code_failures", f"reset:{body.email}", *_CODE_FAILURES):
            auth.reset_password(body.email, body.code, body.new_password)
        # The emailed code proved who this is: a sign-in lock an attacker caused with
        # wrong guesses must not keep the owner out of the account they just recovered.
        limits.signed_in_by_recovery(body.email, ctx.ip)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/session",
    response_model=SessionInfo,
    summary="Who the bearer token belongs to (verified locally, no Cognito call)",
    responses=responses(
        errors.NotAuthenticatedError, errors.InvalidTokenError, errors.UpstreamUnavailableError
    ),
)
async def session(claims: CurrentUser) -> Response:
    # Serialized here in one step: returning the model would make FastAPI validate it again
    # against response_model before serializing it (to the same JSON).
    return Response(session_json(claims), media_type="application/json")
