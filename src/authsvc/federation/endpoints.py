from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import RedirectResponse

from authsvc import errors
from authsvc.audit.dependencies import AuditDep
from authsvc.auth import transport
from authsvc.auth.schemas import TokenResult
from authsvc.auth.service import token_identity
from authsvc.dependencies import CurrentUser, LimitsDep, RequestContextDep, SettingsDep, StateDep
from authsvc.federation.dependencies import FederationDep
from authsvc.federation.errors import (
    FederationNotConfiguredError,
    IdentityPoolRefusedError,
    InvalidGrantError,
    InvalidHandoffCodeError,
    InvalidStateError,
    ProviderDeniedError,
    RedirectUriNotAllowedError,
    UnknownProviderError,
)
from authsvc.federation.schemas import (
    AwsCredentialsRequest,
    AwsCredentialsResponse,
    ExchangeRequest,
    NativeTokenRequest,
    ProviderInfo,
    ProviderList,
    StartRequest,
    StartResponse,
)
from authsvc.federation.service import CallbackError
from authsvc.problems import responses

router = APIRouter(tags=["federation"])

# The browser that started a sign-in: only it can finish it. SameSite=Lax, not Strict: the
# callback is a top-level navigation coming back from the identity provider's site.
BROWSER_COOKIE = "__Host-authsvc_federation"
_NO_STORE = {"Cache-Control": "no-store"}
_TOKEN_HEADERS: dict[str, Any] = {
    "Cache-Control": {"description": "no-store", "schema": {"type": "string"}}
}
_UPSTREAM = errors.LIMITED_UPSTREAM


@router.get(
    "/v1/auth/federation/providers",
    response_model=ProviderList,
    summary="Identity providers this deployment offers (Google, Facebook, …)",
    responses=responses(),
)
async def providers(state: StateDep) -> ProviderList:
    federation = state.federation
    items = [] if federation is None else list(federation.providers.values())
    return ProviderList(items=[ProviderInfo(name=p.name, kind=p.kind) for p in items])


@router.post(
    "/v1/auth/federation/{provider}/start",
    response_model=StartResponse,
    summary="Begin a sign-in with an identity provider (web flow)",
    description=(
        "Answers Cognito's `/oauth2/authorize` URL (PKCE S256, `identity_provider`, a"
        " single-use `state`) and sets a short-lived `__Host-` cookie that binds the sign-in to"
        " this browser. Send the browser to `authorization_url`; it comes back to"
        " `redirect_uri#handoff_code=…`."
    ),
    responses=responses(
        UnknownProviderError, RedirectUriNotAllowedError, FederationNotConfiguredError, *_UPSTREAM
    ),
)
def start(
    provider: str,
    body: StartRequest,
    response: Response,
    federation: FederationDep,
    limits: LimitsDep,
    ctx: RequestContextDep,
    settings: SettingsDep,
) -> StartResponse:
    limits.hit("sign_in_ip", ctx.ip)
    started = federation.start(provider, body.redirect_uri)
    response.set_cookie(
        BROWSER_COOKIE,
        started.browser_nonce,
        max_age=settings.federation_state_ttl_seconds,
        path="/",
        secure=True,
        httponly=True,
        samesite="lax",
    )
    response.headers.update(_NO_STORE)
    return StartResponse(authorization_url=started.authorization_url)


@router.get(
    "/v1/auth/federation/callback",
    status_code=status.HTTP_302_FOUND,
    response_class=RedirectResponse,
    summary="Where Cognito's hosted UI returns the browser (web flow)",
    description=(
        "Checks `state` (single use, same browser), exchanges the code at Cognito's"
        " `/oauth2/token` with the PKCE verifier, and redirects to the app's `redirect_uri`"
        " with `#handoff_code=…` (one use, 60 s) — never tokens."
    ),
    responses={
        302: {
            "description": (
                "To the app, with `#handoff_code=…` in the fragment; or, for a browser"
                " (`Accept: text/html`) whose sign-in failed after its `state` was found,"
                " with `#error=<code>&error_description=…`."
            )
        },
        **responses(
            InvalidStateError,
            ProviderDeniedError,
            InvalidGrantError,
            FederationNotConfiguredError,
            *_UPSTREAM,
        ),
    },
)
def callback(
    request: Request,
    federation: FederationDep,
    audit: AuditDep,
    limits: LimitsDep,
    ctx: RequestContextDep,
    state: Annotated[str | None, Query(max_length=512)] = None,
    code: Annotated[str | None, Query(max_length=2048)] = None,
    error: Annotated[str | None, Query(max_length=256)] = None,
    error_description: Annotated[str | None, Query(max_length=2048)] = None,
) -> RedirectResponse:
    del error_description  # the provider's prose is not shown: `provider_error` says enough
    failure: CallbackError | None = None
    try:
        with audit.track(
            "federated_sign_in", ctx, failure_action="federated_sign_in_failed"
        ) as event:
            limits.hit("sign_in_ip", ctx.ip)
            try:
                finished = federation.callback(
                    state=state,
                    code=code,
                    error=error,
                    browser_nonce=request.cookies.get(BROWSER_COOKIE),
                )
            except CallbackError as exc:
                failure = exc
                raise exc.error from None
            event.actor = finished.sub
            event.subject(finished.username, finished.email)
            event.detail["provider"] = finished.provider
    except errors.AuthSvcError as exc:
        if failure is not None and _wants_html(request):
            # A browser back from the hosted UI: to the app, which shows the error, rather
            # than a JSON page. API callers and unknown states get the problem response.
            back = RedirectResponse(failure.app_redirect(), status_code=status.HTTP_302_FOUND)
            back.headers["Set-Cookie"] = _clearing_header()
            back.headers.update(_NO_STORE)
            return back
        exc.headers["Set-Cookie"] = _clearing_header()
        raise
    redirect = RedirectResponse(finished.redirect_to, status_code=status.HTTP_302_FOUND)
    redirect.delete_cookie(BROWSER_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    redirect.headers.update(_NO_STORE)
    return redirect


@router.post(
    "/v1/auth/federation/exchange",
    response_model=TokenResult,
    summary="Trade the one-time handoff code for tokens (web flow)",
    description="Send `X-Token-Transport: cookie` to get the refresh token as a cookie.",
    responses={
        200: {"headers": _TOKEN_HEADERS},
        **responses(InvalidHandoffCodeError, FederationNotConfiguredError, *_UPSTREAM),
    },
)
def exchange(
    body: ExchangeRequest,
    request: Request,
    response: Response,
    federation: FederationDep,
    limits: LimitsDep,
    ctx: RequestContextDep,
    settings: SettingsDep,
) -> TokenResult:
    limits.hit("sign_in_ip", ctx.ip)
    result = federation.exchange(body.handoff_code)
    response.headers.update(_NO_STORE)
    return transport.deliver(request, response, result, settings)


@router.post(
    "/v1/auth/federation/token",
    response_model=TokenResult,
    summary="Trade an authorization code and its PKCE verifier for tokens (native apps)",
    description=(
        "For apps that run PKCE against Cognito's `/oauth2/authorize` themselves: authsvc"
        " adds the client secret, so no secret ships in the app. `redirect_uri` must be the"
        " one the app used and be listed in AUTHSVC_FEDERATION_REDIRECT_URIS."
    ),
    responses={
        200: {"headers": _TOKEN_HEADERS},
        **responses(
            RedirectUriNotAllowedError,
            InvalidGrantError,
            FederationNotConfiguredError,
            *_UPSTREAM,
        ),
    },
)
def native_token(
    body: NativeTokenRequest,
    request: Request,
    response: Response,
    federation: FederationDep,
    audit: AuditDep,
    limits: LimitsDep,
    ctx: RequestContextDep,
    settings: SettingsDep,
) -> TokenResult:
    with audit.track("federated_sign_in", ctx, failure_action="federated_sign_in_failed") as event:
        event.detail["flow"] = "native"
        limits.hit("sign_in_ip", ctx.ip)
        result = federation.native_token(body.code, body.code_verifier, body.redirect_uri)
        event.actor, username, email = token_identity(result)
        event.subject(username, email)
    response.headers.update(_NO_STORE)
    return transport.deliver(request, response, result, settings)


@router.post(
    "/v1/me/aws-credentials",
    response_model=AwsCredentialsResponse,
    summary="Temporary AWS credentials from the identity pool",
    description=(
        "cognito-identity GetId + GetCredentialsForIdentity with the user's ID token as"
        " the login. The values are never logged or audited."
    ),
    responses={
        200: {"headers": _TOKEN_HEADERS},
        **responses(
            *errors.AUTH,
            IdentityPoolRefusedError,
            FederationNotConfiguredError,
            *errors.UPSTREAM,
        ),
    },
)
async def aws_credentials(
    body: AwsCredentialsRequest,
    claims: CurrentUser,
    response: Response,
    federation: FederationDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> AwsCredentialsResponse:
    with audit.track("aws_credentials_issued", ctx, actor=claims.sub, target=claims.username):
        creds = await run_in_threadpool(federation.aws_credentials, claims, body.id_token)
    response.headers.update(_NO_STORE)
    return AwsCredentialsResponse(
        identity_id=creds.identity_id,
        access_key_id=creds.access_key_id,
        secret_access_key=creds.secret_access_key,
        session_token=creds.session_token,
        expiration=creds.expiration,
    )


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _clearing_header() -> str:
    response = Response()
    response.delete_cookie(BROWSER_COOKIE, path="/", secure=True, httponly=True, samesite="lax")
    return response.headers["set-cookie"]
