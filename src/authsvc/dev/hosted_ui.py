"""A stand-in for Cognito's hosted UI in `authsvc dev` (moto has none): ``/oauth2/authorize``
and ``/oauth2/token`` under ``/dev/cognito``.

The service is configured with this as its hosted-UI base URL (AUTHSVC_FEDERATION_DOMAIN_URL)
and reaches it over HTTP exactly as it reaches Cognito. The authorize page lists made-up
identities of the requested provider; choosing one creates (or reuses) that user in the
emulator's pool and issues an authorization code bound to the PKCE challenge, the client
and the redirect URI; the token endpoint checks all three, like Cognito, and answers tokens
minted by the emulator's pool.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from authsvc.cognito.gateway import secret_hash
from authsvc.federation.providers import parse_providers
from authsvc.state import AppState

router = APIRouter(prefix="/dev/cognito/oauth2", include_in_schema=False)

CODE_TTL_SECONDS = 300  # Cognito's authorization codes live 5 minutes

IDENTITIES: dict[str, list[tuple[str, str, str]]] = {
    # kind -> (given name, family name, local part)
    "google": [("Ada", "Lovelace", "ada"), ("Alan", "Turing", "alan")],
    "facebook": [("Grace", "Hopper", "grace"), ("Linus", "Torvalds", "linus")],
    "amazon": [("Margaret", "Hamilton", "margaret")],
    "apple": [("Steve", "Wozniak", "steve")],
    "oidc": [("Barbara", "Liskov", "barbara")],
    "saml": [("Edsger", "Dijkstra", "edsger")],
}


@dataclass(frozen=True, slots=True)
class _Grant:
    challenge: str
    client_id: str
    redirect_uri: str
    email: str
    given_name: str
    family_name: str
    expires: float
    provider: str = ""


class HostedUiStandIn:
    def __init__(self, state: AppState) -> None:
        self.state = state
        settings = state.settings
        self.providers = parse_providers(settings.federation_providers)
        # Cognito's CallbackURLs for the app client: authsvc's callback and the native apps'.
        self.callback_urls = {
            *([settings.federation_callback_url] if settings.federation_callback_url else []),
            *settings.federation_redirect_uris,
        }
        self._codes: dict[str, _Grant] = {}
        self._lock = threading.Lock()

    def issue(self, grant: _Grant) -> str:
        code = secrets.token_urlsafe(32)
        with self._lock:
            now = time.time()
            for key in [k for k, g in self._codes.items() if g.expires < now]:
                del self._codes[key]
            self._codes[code] = grant
        return code

    def take(self, code: str) -> _Grant | None:
        with self._lock:
            grant = self._codes.pop(code, None)
        return grant if grant is not None and grant.expires >= time.time() else None

    def tokens_for(self, grant: _Grant) -> dict[str, Any]:
        """Tokens from the emulator's pool for this identity: the user is created on first
        sign-in (as Cognito does for a federated user), then signed in with a throwaway
        password that nobody ever sees."""
        settings = self.state.settings
        client = self.state.gateway.client
        pool_id = settings.cognito_user_pool_id
        attributes = [
            {"Name": "email", "Value": grant.email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "given_name", "Value": grant.given_name},
            {"Name": "family_name", "Value": grant.family_name},
        ]
        password = "Aa1!" + secrets.token_urlsafe(24)
        try:
            client.admin_create_user(
                UserPoolId=pool_id,
                Username=grant.email,
                MessageAction="SUPPRESS",
                TemporaryPassword=password,
                UserAttributes=attributes,
            )
        except client.exceptions.UsernameExistsException:
            pass
        # Cognito puts every federated user in the group <pool id>_<provider>: that also
        # tells the stand-in's users from password accounts (password_account_exists).
        group = self.federated_group(grant.provider)
        try:
            client.create_group(UserPoolId=pool_id, GroupName=group)
        except client.exceptions.GroupExistsException:
            pass
        client.admin_add_user_to_group(UserPoolId=pool_id, Username=grant.email, GroupName=group)
        client.admin_set_user_password(
            UserPoolId=pool_id, Username=grant.email, Password=password, Permanent=True
        )
        parameters = {"USERNAME": grant.email, "PASSWORD": password}
        if settings.client_secret:
            parameters["SECRET_HASH"] = secret_hash(
                grant.email, settings.cognito_client_id, settings.client_secret
            )
        answer = client.initiate_auth(
            ClientId=settings.cognito_client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters=parameters,
        )["AuthenticationResult"]
        return {
            "access_token": answer["AccessToken"],
            "id_token": answer["IdToken"],
            "refresh_token": answer["RefreshToken"],
            "expires_in": answer["ExpiresIn"],
            "token_type": "Bearer",
        }

    def federated_group(self, provider: str) -> str:
        return f"{self.state.settings.cognito_user_pool_id}_{provider}"

    def password_account_exists(self, email: str, provider: str) -> bool:
        """An account with this email that the stand-in did not create for ``provider``."""
        client = self.state.gateway.client
        pool_id = self.state.settings.cognito_user_pool_id
        try:
            groups = client.admin_list_groups_for_user(UserPoolId=pool_id, Username=email)
        except client.exceptions.UserNotFoundException:
            return False
        names = {g["GroupName"] for g in groups.get("Groups", [])}
        return self.federated_group(provider) not in names

    def revoke(self, token: str) -> None:
        """moto has no RevokeToken: end this client's refresh token in the emulator's pool
        itself (moto runs in this process; ``UserPool.refresh_tokens`` maps a token to its
        client, user and origin, and None marks a revoked one, as moto's sign_out does)."""
        from moto.cognitoidp.models import cognitoidp_backends

        settings = self.state.settings
        for account in list(cognitoidp_backends.keys()):
            backend = cognitoidp_backends[account][settings.cognito_region]
            pool = backend.user_pools.get(settings.cognito_user_pool_id)
            entry = pool.refresh_tokens.get(token) if pool is not None else None
            if pool is not None and entry is not None and entry[0] == settings.cognito_client_id:
                pool.refresh_tokens[token] = None


def _standin(request: Request) -> HostedUiStandIn:
    standin: HostedUiStandIn = request.app.state.hosted_ui
    return standin


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title></head><body>"
        "<p><em>authsvc dev — stand-in for Cognito's hosted UI (no internet needed)</em></p>"
        f"<h1>{html.escape(title)}</h1>{body}</body></html>",
        status_code=status,
    )


def _back(redirect_uri: str, **params: str) -> RedirectResponse:
    joiner = "&" if "?" in redirect_uri else "?"
    return RedirectResponse(f"{redirect_uri}{joiner}{urlencode(params)}", status_code=302)


@router.get("/authorize")
def authorize_page(
    request: Request,
    response_type: Annotated[str, Query()] = "",
    client_id: Annotated[str, Query()] = "",
    redirect_uri: Annotated[str, Query()] = "",
    identity_provider: Annotated[str, Query()] = "",
    scope: Annotated[str, Query()] = "",
    state: Annotated[str, Query()] = "",
    code_challenge: Annotated[str, Query()] = "",
    code_challenge_method: Annotated[str, Query()] = "",
) -> Response:
    standin = _standin(request)
    # Like Cognito: a bad client or redirect URI is an error page, never a redirect.
    if client_id != standin.state.settings.cognito_client_id:
        return _page("Error: unknown client_id", "", 400)
    if redirect_uri not in standin.callback_urls:
        return _page("Error: redirect_mismatch", "", 400)
    if response_type != "code":
        return _back(redirect_uri, error="unsupported_response_type", state=state)
    if code_challenge_method != "S256" or not code_challenge:
        return _back(redirect_uri, error="invalid_request", state=state)
    provider = standin.providers.get(identity_provider.lower())
    if provider is None:
        return _back(redirect_uri, error="invalid_request", state=state)
    hidden = "".join(
        f"<input type='hidden' name='{k}' value='{html.escape(v, quote=True)}'>"
        for k, v in {
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "identity_provider": provider.name,
            "state": state,
            "code_challenge": code_challenge,
        }.items()
    )
    buttons = "".join(
        f"<p><button name='identity' value='{i}' data-identity='{html.escape(local)}'>"
        f"{html.escape(given)} {html.escape(family)}"
        f" ({html.escape(_email(local, provider.kind))})</button></p>"
        for i, (given, family, local) in enumerate(IDENTITIES[provider.kind])
    )
    cancel = "<p><button name='identity' value='cancel'>Cancel</button></p>"
    form = f"<form method='post' action='authorize'>{hidden}{buttons}{cancel}</form>"
    return _page(f"Sign in with {provider.name}", form)


async def _form(request: Request) -> dict[str, str]:
    """An application/x-www-form-urlencoded body (what browsers and OAuth clients send)."""
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


@router.post("/authorize")
async def authorize_choose(request: Request) -> Response:
    standin = _standin(request)
    form = await _form(request)
    client_id, redirect_uri = form.get("client_id", ""), form.get("redirect_uri", "")
    state, identity = form.get("state", ""), form.get("identity", "")
    if client_id != standin.state.settings.cognito_client_id:
        return _page("Error: unknown client_id", "", 400)
    if redirect_uri not in standin.callback_urls:
        return _page("Error: redirect_mismatch", "", 400)
    provider = standin.providers.get(form.get("identity_provider", "").lower())
    if provider is None:
        return _back(redirect_uri, error="invalid_request", state=state)
    if identity == "cancel":
        return _back(
            redirect_uri, error="access_denied", error_description="cancelled", state=state
        )
    people = IDENTITIES[provider.kind]
    try:
        given, family, local = people[int(identity)]
    except (ValueError, IndexError):
        return _back(redirect_uri, error="invalid_request", state=state)
    email = _email(local, provider.kind)
    if await run_in_threadpool(standin.password_account_exists, email, provider.name):
        # Cognito would create a separate user (Google_<sub>) beside the password account;
        # the emulator cannot hold two users with one email (moto wants an email as the
        # username), so the stand-in refuses, the way Cognito answers when a pre-sign-up
        # trigger refuses. Never: sign in as, or change, the existing account.
        return _back(
            redirect_uri,
            error="invalid_request",
            error_description=(
                f"{email} already has a password account; the dev stand-in does not create"
                " a second user for it (Cognito would) and never links them"
            ),
            state=state,
        )
    code = standin.issue(
        _Grant(
            challenge=form.get("code_challenge", ""),
            client_id=client_id,
            redirect_uri=redirect_uri,
            email=email,
            given_name=given,
            family_name=family,
            expires=time.time() + CODE_TTL_SECONDS,
            provider=provider.name,
        )
    )
    return _back(redirect_uri, code=code, state=state)


@router.post("/token")
async def token(request: Request) -> JSONResponse:
    standin = _standin(request)
    form = await _form(request)
    if form.get("grant_type") != "authorization_code":
        return _oauth_error("unsupported_grant_type", 400)
    if not _client_authenticated(request, form, standin):
        return _oauth_error("invalid_client", 401)
    grant = standin.take(form.get("code", ""))
    if grant is None or grant.redirect_uri != form.get("redirect_uri"):
        return _oauth_error("invalid_grant", 400)
    verifier = form.get("code_verifier", "")
    digest = hashlib.sha256(verifier.encode()).digest()
    computed = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    if not verifier or not hmac.compare_digest(computed, grant.challenge):
        return _oauth_error("invalid_grant", 400)
    tokens = await run_in_threadpool(standin.tokens_for, grant)
    return JSONResponse(tokens, headers={"Cache-Control": "no-store"})


@router.post("/revoke")
async def revoke(request: Request) -> Response:
    """Cognito's /oauth2/revoke (RFC 7009): 200 whether or not the token was known."""
    standin = _standin(request)
    form = await _form(request)
    if not _client_authenticated(request, form, standin):
        return _oauth_error("invalid_client", 401)
    token = form.get("token", "")
    if not token:
        return _oauth_error("invalid_request", 400)
    await run_in_threadpool(standin.revoke, token)
    return Response(status_code=200, headers={"Cache-Control": "no-store"})


def _client_authenticated(request: Request, form: dict[str, str], standin: HostedUiStandIn) -> bool:
    """Client authentication as Cognito does it: HTTP Basic for a client with a secret."""
    settings = standin.state.settings
    authorization = request.headers.get("authorization", "")
    if settings.client_secret:
        expected = base64.b64encode(
            f"{settings.cognito_client_id}:{settings.client_secret}".encode()
        ).decode()
        return hmac.compare_digest(authorization, f"Basic {expected}")
    return form.get("client_id") == settings.cognito_client_id


def _oauth_error(error: str, status: int) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status, headers={"Cache-Control": "no-store"})


def _email(local: str, kind: str) -> str:
    return f"{local}@{kind}.example"


def mount_hosted_ui(app: FastAPI, state: AppState) -> None:
    app.state.hosted_ui = HostedUiStandIn(state)
    app.include_router(router)
