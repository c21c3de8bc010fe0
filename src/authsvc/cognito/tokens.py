"""Local verification of Cognito access tokens (DESIGN §5).

RS256 only; keys from the pool's JWKS, cached, refetched on an unknown ``kid`` at most once
per ``jwks_min_refetch_seconds``. ``jku``, ``x5u`` and embedded ``jwk`` headers are never
looked at, so no token can make the service fetch anything. Verified tokens are kept in a
bounded cache (the RSA check is the expensive part); revocation is checked on every call.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import jwt

from authsvc import errors, metrics
from authsvc.config import Settings

log = logging.getLogger("authsvc.tokens")

MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True, slots=True)
class AccessClaims:
    sub: str
    username: str
    groups: tuple[str, ...]
    scopes: tuple[str, ...]
    client_id: str
    issued_at: int
    expires_at: int
    jti: str
    token: str

    @property
    def issued_at_dt(self) -> datetime:
        return datetime.fromtimestamp(self.issued_at, UTC)

    @property
    def expires_at_dt(self) -> datetime:
        return datetime.fromtimestamp(self.expires_at, UTC)


class JWKSCache:
    def __init__(
        self,
        url: str,
        *,
        min_refetch_seconds: float = 10.0,
        fetch: Callable[[str], dict[str, Any]] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.min_refetch_seconds = min_refetch_seconds
        self._fetch = fetch or _http_fetch
        self._clock = clock
        self._keys: dict[str, Any] = {}
        self._last_attempt: float | None = None
        self._lock = threading.Lock()
        self.fetch_count = 0

    def prefetch(self) -> None:
        try:
            with self._lock:
                self._refresh()
        except Exception:  # noqa: BLE001 - start-up must not fail because JWKS is down
            log.warning("JWKS prefetch from %s failed; will retry on first use", self.url)

    def get(self, kid: str) -> Any:
        key = self._keys.get(kid)
        if key is not None:
            return key
        with self._lock:
            key = self._keys.get(kid)
            if key is not None:
                return key
            now = self._clock()
            # With no keys at all we retry sooner: otherwise one failure would mean 10 s of 503s.
            gap = self.min_refetch_seconds if self._keys else min(1.0, self.min_refetch_seconds)
            if self._last_attempt is None or now - self._last_attempt >= gap:
                try:
                    self._refresh()
                except Exception as exc:  # noqa: BLE001
                    log.warning("JWKS fetch failed: %s", type(exc).__name__)
            key = self._keys.get(kid)
        if key is not None:
            return key
        if not self._keys:
            raise errors.UpstreamUnavailableError(
                "Token signing keys are unavailable; retry later."
            )
        raise errors.InvalidTokenError()

    def _refresh(self) -> None:
        self._last_attempt = self._clock()
        self.fetch_count += 1
        try:
            self._load()
        except Exception:
            metrics.count("authsvc_jwks_fetches", "error")
            raise
        metrics.count("authsvc_jwks_fetches", "ok")

    def _load(self) -> None:
        document = self._fetch(self.url)
        keys: dict[str, Any] = {}
        for item in document.get("keys", []):
            if item.get("kty") != "RSA" or item.get("alg", "RS256") != "RS256":
                continue
            if item.get("use", "sig") != "sig" or not isinstance(item.get("kid"), str):
                continue
            keys[item["kid"]] = jwt.PyJWK(item, algorithm="RS256").key
        if not keys:
            raise ValueError("JWKS has no RS256 signing keys")
        self._keys = keys


# A JWKS is a few kilobytes; anything much larger is not one.
MAX_JWKS_BYTES = 1 << 20


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A 3xx is an error (HTTPError), never followed: the keys come from the pool's own URL."""

    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None


# The standard library's client, not httpx: importing httpx (and the CLI extras it pulls
# in when installed) was ~0.1-0.3 s of every `authsvc serve` start (issue 12, row 10).
# Only http and https: no file:, ftp: or data: handler.
_OPENER = urllib.request.OpenerDirector()
for _handler in (
    urllib.request.ProxyHandler(),
    urllib.request.HTTPHandler(),
    urllib.request.HTTPSHandler(),
    urllib.request.HTTPDefaultErrorHandler(),
    urllib.request.HTTPErrorProcessor(),
    _NoRedirects(),
):
    _OPENER.add_handler(_handler)


def _http_fetch(url: str) -> dict[str, Any]:
    """GET ``url``: a 2xx JSON object, or an exception (URLError/HTTPError for a network
    failure or any other status, 3xx included; ValueError for a body that is not one)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError("the JWKS URL must be http(s)")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 - http(s) only, checked above
    with _OPENER.open(request, timeout=3.0) as response:
        body = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError("the JWKS document is too large")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError("the JWKS document is not a JSON object")
    return document


_last_read = threading.local()


def unverified_claims(token: str) -> Mapping[str, Any]:
    """The payload of a token Cognito has just handed us, read without verification: only
    for tokens received straight from Cognito, never for one a client presents.

    Read-only, and read once: a sign-in looks at its new token three times (the revocation
    ledger, the refresh token's username, the audit event's actor), all on the request's
    thread, so each thread keeps the last token it decoded (issue 12: sign-in)."""
    if getattr(_last_read, "token", None) == token:
        claims: Mapping[str, Any] = _last_read.claims
        return claims
    payload = token.split(".")[1]
    decoded = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    if not isinstance(decoded, dict):
        raise ValueError("the token's payload is not a JSON object")
    claims = MappingProxyType(decoded)
    _last_read.token, _last_read.claims = token, claims
    return claims


RevocationCheck = Callable[[AccessClaims], bool]


class RevokedTokenError(errors.InvalidTokenError):
    """A genuine token that was revoked: ``invalid_token`` to the client, audited."""

    def __init__(self, claims: AccessClaims) -> None:
        super().__init__("The token has been revoked.")
        self.claims = claims


class TokenVerifier:
    def __init__(
        self,
        settings: Settings,
        jwks: JWKSCache | None = None,
        *,
        is_revoked: RevocationCheck | None = None,
    ) -> None:
        self.issuer = settings.issuer
        self.client_id = settings.cognito_client_id
        # Directory sign-in (issue 15) issues tokens on its own app client: accept it too.
        self.client_ids = frozenset(filter(None, (self.client_id, settings.directory_client_id)))
        self.leeway = settings.jwt_leeway_seconds
        self.jwks = jwks or JWKSCache(
            settings.jwks_url, min_refetch_seconds=settings.jwks_min_refetch_seconds
        )
        self.is_revoked = is_revoked
        self._cache: OrderedDict[str, AccessClaims] = OrderedDict()
        self._cache_size = settings.verified_token_cache_size
        self._cache_lock = threading.Lock()

    def is_cached(self, token: str) -> bool:
        return token in self._cache

    def verify_access(self, token: str) -> AccessClaims:
        try:
            claims = self._cached(token)
            if claims is None:
                claims = self._verify(token)
                self._remember(token, claims)
            if self.is_revoked is not None and self.is_revoked(claims):
                raise RevokedTokenError(claims)
        except errors.InvalidTokenError as exc:
            # Why, for the operator (a wrong issuer setting reads as nothing otherwise): the
            # exception class or the refusal's reason, never the token.
            log.info("token refused: %s", refusal_reason(exc))
            raise
        return claims

    def _cached(self, token: str) -> AccessClaims | None:
        claims = self._cache.get(token)
        if claims is None:
            return None
        if claims.expires_at + self.leeway <= time.time():
            with self._cache_lock:
                self._cache.pop(token, None)
            raise errors.InvalidTokenError("The token has expired.")
        return claims

    def _remember(self, token: str, claims: AccessClaims) -> None:
        if self._cache_size <= 0:
            return
        with self._cache_lock:
            self._cache[token] = claims
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _verify(self, token: str) -> AccessClaims:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise errors.InvalidTokenError("The token is malformed.")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise errors.InvalidTokenError("The token is malformed.") from None
        if header.get("alg") != "RS256":
            raise errors.InvalidTokenError("Only RS256 tokens are accepted.")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid or len(kid) > 256:
            raise errors.InvalidTokenError("The token has no usable key id.")
        key = self.jwks.get(kid)
        try:
            payload = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                issuer=self.issuer,
                leeway=self.leeway,
                options={
                    # client_id is checked below, after token_use: an ID token has none,
                    # and deserves a better answer than "invalid".
                    "require": ["exp", "iat", "iss", "sub", "token_use"],
                    "verify_aud": False,
                },
            )
        except jwt.ExpiredSignatureError as exc:
            raise errors.InvalidTokenError("The token has expired.") from exc
        except jwt.PyJWTError as exc:
            raise errors.InvalidTokenError() from exc
        if payload.get("token_use") == "id":
            raise errors.InvalidTokenError(
                "This is an ID token: send the access token (`access_token`) as the bearer."
            )
        if payload.get("token_use") != "access":
            raise errors.InvalidTokenError("An access token is required.")
        client_id = payload.get("client_id")
        if not isinstance(client_id, str) or client_id not in self.client_ids:
            raise errors.InvalidTokenError("The token was issued to another client.")
        return _claims(payload, token)


def refusal_reason(exc: errors.InvalidTokenError) -> str:
    cause = exc.__cause__
    return type(cause).__name__ if cause is not None else str(exc.detail)


# Seconds since the epoch up to 9999-12-31: what datetime (and Cognito) can mean.
_MAX_TIME = 253_402_300_799


def _timestamp(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TIME:
        raise errors.InvalidTokenError("The token has a malformed time claim.")
    return value


def _text(value: Any, *, required: bool = True) -> str:
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise errors.InvalidTokenError("The token has a malformed claim.")
    return value


def _claims(payload: dict[str, Any], token: str) -> AccessClaims:
    """Claims with the types Cognito gives them; anything odd in a validly signed token
    (``exp`` = 1e20, groups as a string, a numeric ``sub``) is refused, not coerced."""
    groups = payload.get("cognito:groups", [])
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise errors.InvalidTokenError("The token has a malformed groups claim.")
    sub = _text(payload.get("sub"))
    username = _text(payload.get("username", payload.get("cognito:username", sub)))
    return AccessClaims(
        sub=sub,
        username=username,
        groups=tuple(groups),
        scopes=tuple(_text(payload.get("scope"), required=False).split()),
        client_id=_text(payload.get("client_id")),
        issued_at=_timestamp(payload.get("iat")),
        expires_at=_timestamp(payload.get("exp")),
        jti=_text(payload.get("jti"), required=False),
        token=token,
    )
