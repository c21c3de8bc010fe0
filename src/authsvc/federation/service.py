"""Sign-in through Cognito's hosted UI (authorization code + PKCE) and identity-pool credentials.

Web flow: ``start`` seals a PKCE verifier, the app's redirect URI and a hash of a browser
nonce (the ``__Host-`` cookie) under a random ``state``; Cognito's ``/oauth2/authorize``
sends the browser back to ``callback``, which takes the state (single use), exchanges the
code at ``/oauth2/token`` with the verifier and the client secret, and parks the tokens
under a one-time handoff code for 60 s. The app trades that code at ``exchange``. Tokens
never travel in a URL; the verifier never leaves the server.

Native flow: the app runs PKCE against Cognito itself and hands authsvc the code and its
verifier; authsvc adds the client secret, so no secret ships in an app.

Tokens come back as authsvc sessions: recorded by the revocation ledger like a password
sign-in, refreshed and signed out by the same routes.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from authsvc import errors
from authsvc.auth.schemas import TokenResult
from authsvc.auth.service import AuthService, token_identity
from authsvc.cognito.tokens import TokenVerifier
from authsvc.config import Settings
from authsvc.db import Database
from authsvc.email.crypto import PayloadCipher
from authsvc.federation.credentials import IdentityCredentials
from authsvc.federation.errors import (
    InvalidGrantError,
    InvalidHandoffCodeError,
    InvalidStateError,
    ProviderDeniedError,
    RedirectUriNotAllowedError,
    UnknownProviderError,
)
from authsvc.federation.providers import Provider, parse_providers
from authsvc.federation.repository import GrantRepository

if TYPE_CHECKING:
    import httpx

__all__ = ["CallbackError", "FederationService", "Finished", "Started"]

log = logging.getLogger("authsvc.federation")

# aws.cognito.signin.user.admin: without it Cognito refuses the hosted UI's access tokens on
# GetUser, UpdateUserAttributes, GlobalSignOut and the TOTP calls (/v1/me and friends).
# moto checks no scope, so only this constant and the template keep it right.
SCOPES = "openid email profile aws.cognito.signin.user.admin"
HANDOFF_TTL_SECONDS = 60
_STATE, _HANDOFF = "state", "handoff"


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def pkce_challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True, slots=True)
class Started:
    authorization_url: str
    browser_nonce: str


@dataclass(frozen=True, slots=True)
class Finished:
    redirect_to: str
    provider: str
    sub: str
    username: str
    email: str | None


class CallbackError(Exception):
    """A callback failed after its state was found: ``redirect_uri`` is the app's."""

    def __init__(self, error: errors.AuthSvcError, redirect_uri: str) -> None:
        super().__init__(error.code)
        self.error = error
        self.redirect_uri = redirect_uri

    def app_redirect(self) -> str:
        """The app's URI with the error in the fragment, as OAuth clients expect it there
        (never tokens, never the provider's own prose)."""
        fragment = {"error": self.error.code, "error_description": self.error.detail}
        return f"{self.redirect_uri}#{urlencode(fragment)}"


class FederationService(IdentityCredentials):
    def __init__(
        self,
        settings: Settings,
        db: Database,
        cipher: PayloadCipher,
        auth: AuthService,
        verifier: TokenVerifier,
        *,
        http: httpx.Client | None = None,
        identity_client: Any | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.cipher = cipher
        self.auth = auth
        self.verifier = verifier
        self.providers: dict[str, Provider] = parse_providers(settings.federation_providers)
        self.redirect_uris = frozenset(settings.federation_redirect_uris)
        if http is None:
            # Imported here: only an app with federation configured talks HTTP (issue 12:
            # httpx is not imported by every start-up).
            import httpx

            http = httpx.Client(timeout=settings.federation_timeout_seconds, follow_redirects=False)
        self.http = http
        self._identity_client = identity_client

    # -- web flow --------------------------------------------------------------------

    def provider(self, name: str) -> Provider:
        provider = self.providers.get(name.lower())
        if provider is None:
            raise UnknownProviderError()
        return provider

    def check_redirect_uri(self, redirect_uri: str) -> None:
        if redirect_uri not in self.redirect_uris:
            raise RedirectUriNotAllowedError()

    def start(self, provider_name: str, redirect_uri: str) -> Started:
        provider = self.provider(provider_name)
        self.check_redirect_uri(redirect_uri)
        state = secrets.token_urlsafe(32)
        verifier = secrets.token_urlsafe(64)  # 86 characters: RFC 7636 wants 43-128
        browser = secrets.token_urlsafe(32)
        expires = time.time() + self.settings.federation_state_ttl_seconds
        self._put(
            _STATE,
            state,
            {"v": verifier, "r": redirect_uri, "b": _hash(browser), "p": provider.name},
            expires,
        )
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.settings.cognito_client_id,
                "redirect_uri": self.settings.federation_callback_url,
                "identity_provider": provider.name,
                "scope": SCOPES,
                "state": state,
                "code_challenge": pkce_challenge(verifier),
                "code_challenge_method": "S256",
            }
        )
        url = f"{self.settings.federation_domain_url}/oauth2/authorize?{query}"
        return Started(url, browser)

    def callback(
        self,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        browser_nonce: str | None,
    ) -> Finished:
        if not state:
            raise InvalidStateError()
        data = self._take(_STATE, state, InvalidStateError)
        try:
            if not browser_nonce or not hmac.compare_digest(_hash(browser_nonce), str(data["b"])):
                raise InvalidStateError()
            if error or not code:
                raise ProviderDeniedError(extra={"provider_error": _safe_error(error)})
            started = self.auth.revocations.started()
            tokens = self._token_request(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": str(self.settings.federation_callback_url),
                    "code_verifier": str(data["v"]),
                }
            )
            result = self._result(tokens, started)
        except errors.AuthSvcError as exc:
            # The state was found, so the app's redirect_uri is known (and was checked
            # against the allow-list at start): a browser can be sent back there.
            raise CallbackError(exc, str(data["r"])) from exc
        handoff = secrets.token_urlsafe(32)
        self._put(_HANDOFF, handoff, result.model_dump(), time.time() + HANDOFF_TTL_SECONDS)
        redirect = f"{data['r']}#{urlencode({'handoff_code': handoff})}"
        return Finished(redirect, str(data["p"]), *token_identity(result))

    def exchange(self, handoff_code: str) -> TokenResult:
        data = self._take(_HANDOFF, handoff_code, InvalidHandoffCodeError)
        return TokenResult.model_validate(data)

    # -- native flow -----------------------------------------------------------------

    def native_token(self, code: str, code_verifier: str, redirect_uri: str) -> TokenResult:
        self.check_redirect_uri(redirect_uri)
        started = self.auth.revocations.started()
        tokens = self._token_request(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": code_verifier,
            }
        )
        return self._result(tokens, started)

    # -- sign-out --------------------------------------------------------------------

    def revoke_refresh_token(self, refresh_token: str) -> bool:
        """POST the hosted UI's /oauth2/revoke (RFC 7009) for one refresh token. True when
        it is done, or refused for good (a client without token revocation answers 400
        ``unsupported_token_type``: GlobalSignOut has ended the session anyway); False when
        the endpoint could not be reached, so the caller retries."""
        if not self.settings.federation_domain_url:
            return True
        import httpx

        form = {"token": refresh_token}
        secret = self.settings.client_secret
        # httpx.Auth() is the no-op scheme (a public client authenticates in the form).
        auth = httpx.BasicAuth(self.settings.cognito_client_id, secret) if secret else httpx.Auth()
        if not secret:
            form["client_id"] = self.settings.cognito_client_id
        url = f"{self.settings.federation_domain_url}/oauth2/revoke"
        try:
            response = self.http.post(url, data=form, auth=auth)
        except httpx.HTTPError as exc:
            log.warning("revocation endpoint unreachable: %s", type(exc).__name__)
            return False
        if response.status_code >= 500 or response.status_code == 429:
            log.warning("revocation endpoint answered %s", response.status_code)
            return False
        if response.status_code != 200:
            try:
                oauth_error = str(response.json().get("error", ""))
            except (ValueError, AttributeError):
                oauth_error = ""
            log.info(
                "revocation endpoint refused: %s %s", response.status_code, _safe_error(oauth_error)
            )
        return True

    # -- helpers (AWS credentials: credentials.py) -----------------------------------

    def _token_request(self, form: dict[str, str]) -> dict[str, Any]:
        """POST to the hosted UI's /oauth2/token. A confidential client authenticates with
        HTTP Basic (what Cognito expects); a public one names itself in the body."""
        import httpx

        secret = self.settings.client_secret
        client_id = self.settings.cognito_client_id
        auth = httpx.Auth()  # no-op: a public client names itself in the form
        if secret:
            auth = httpx.BasicAuth(client_id, secret)
        else:
            form = {**form, "client_id": client_id}
        url = f"{self.settings.federation_domain_url}/oauth2/token"
        try:
            response = self.http.post(
                url, data=form, auth=auth, headers={"Accept": "application/json"}
            )
        except httpx.HTTPError as exc:
            log.warning("token endpoint unreachable: %s", type(exc).__name__)
            raise errors.UpstreamUnavailableError() from None
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 500:
            raise errors.UpstreamUnavailableError()
        if response.status_code != 200:
            oauth_error = str(body.get("error", ""))
            if oauth_error == "invalid_grant":
                raise InvalidGrantError()
            log.warning(
                "token endpoint answered %s %s", response.status_code, _safe_error(oauth_error)
            )
            raise errors.UpstreamError()
        if not all(isinstance(body.get(k), str) for k in ("access_token", "id_token")):
            log.warning("token endpoint answered without access_token/id_token")
            raise errors.UpstreamError()
        return body

    def _result(self, tokens: dict[str, Any], started: int) -> TokenResult:
        upstream = {
            "AuthenticationResult": {
                "AccessToken": tokens["access_token"],
                "IdToken": tokens["id_token"],
                "ExpiresIn": int(tokens.get("expires_in") or 3600),
                **(
                    {"RefreshToken": tokens["refresh_token"]} if tokens.get("refresh_token") else {}
                ),
            }
        }
        try:
            result = self.auth.tokens_from(upstream, started)
        except (ValueError, KeyError, IndexError, TypeError):
            # Not a JWT access token: not something Cognito issues.
            log.warning("token endpoint answered an access token that is not a JWT")
            raise errors.UpstreamError() from None
        assert isinstance(result, TokenResult)
        return result

    def _put(self, kind: str, key: str, data: dict[str, Any], expires: float) -> None:
        sealed = self.cipher.seal({**data, "exp": expires})
        with self.db.sessions() as session, session.begin():
            repo = GrantRepository(session)
            repo.prune(datetime.now(UTC) - timedelta(minutes=5))
            repo.add(_hash(key), kind, sealed, datetime.fromtimestamp(expires, UTC))

    def _take(self, kind: str, key: str, error: type[errors.AuthSvcError]) -> dict[str, Any]:
        if len(key) > 512:
            raise error()
        with self.db.sessions() as session, session.begin():
            sealed = GrantRepository(session).take(_hash(key), kind)
        if sealed is None:
            raise error()
        try:
            data = self.cipher.open(sealed)
        except ValueError:
            raise error() from None
        if float(data.get("exp", 0)) < time.time():
            raise error()
        return data


def _safe_error(value: str | None) -> str:
    """An OAuth error code as the provider sent it, cut down to what such codes contain."""
    if not value:
        return "no_code"
    return "".join(c for c in value[:64] if c.isalnum() or c in "_-.") or "unknown"
