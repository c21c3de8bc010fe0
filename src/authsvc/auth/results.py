"""What a Cognito auth response becomes: tokens (the refresh token wrapped with the username
when the client has a secret) or a sealed challenge; the masked delivery of a code."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from authsvc import errors
from authsvc.auth.schemas import (
    ChallengeResult,
    Delivery,
    DeliveryResponse,
    TokenResult,
)
from authsvc.auth.sealing import ChallengeSealer, SealedChallenge
from authsvc.cognito.gateway import CognitoGateway, challenge_username
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import unverified_claims
from authsvc.db import Database
from authsvc.revocation.service import RevocationRegistry

log = logging.getLogger("authsvc.auth")

_WRAP_PREFIX = "rt1."


def mask_email(email: str) -> str:
    """``bob@example.com`` → ``b***@e***.com``, computed from what was submitted."""
    local, _, domain = email.partition("@")
    name, dot, tld = domain.rpartition(".")
    if not dot:
        name, tld = domain, ""
    return f"{local[:1]}***@{name[:1]}***" + (f".{tld}" if tld else "")


def delivery_for(email: str) -> DeliveryResponse:
    return DeliveryResponse(delivery=Delivery(destination=mask_email(email)))


class AuthResults:
    """The auth service's state, and turning Cognito's answers into results."""

    def __init__(
        self,
        gateway: CognitoGateway,
        pool: PoolInfoCache,
        revocations: RevocationRegistry,
        sealer: ChallengeSealer,
        db: Database | None = None,
    ) -> None:
        self.gateway = gateway
        self.pool = pool
        self.revocations = revocations
        self.sealer = sealer
        self.db = db
        self._pending_sign_outs: set[str] = set()
        self._pending_lock = threading.Lock()
        # Refresh tokens another flow issued on its own app client: prefix -> refresh
        # (directory sign-in registers "dir1.").
        self.refresh_routes: dict[str, Callable[[str], TokenResult]] = {}
        # Members of this Cognito group (the corporate directory's users) sign in only
        # through the directory: no password sign-in and no password reset for them
        # (set by create_app when the directory is configured).
        self.password_refused_group: str | None = None
        # Revokes one refresh token at the hosted UI's /oauth2/revoke (set by create_app when
        # federation is configured): True when done or refused for good, False to retry.
        self.refresh_revoker: Callable[[str], bool] | None = None
        self._pending_revocations: set[str] = set()

    def tokens_from(
        self, response: dict[str, Any], started: int, *, email: str = ""
    ) -> TokenResult | ChallengeResult:
        """Turn a Cognito auth response obtained by another flow (invitations, federation, the
        directory) into a result. ``email`` names the user of a challenge; the flows that pass
        none expect tokens only (a challenge is then an ``upstream_error``)."""
        return self._result(response, started, email=email, username=email)

    def _result(
        self,
        response: dict[str, Any],
        started: int,
        *,
        email: str = "",
        username: str = "",
        refresh_token: str | None = None,
    ) -> TokenResult | ChallengeResult:
        auth = response.get("AuthenticationResult")
        if auth:
            access = auth["AccessToken"]
            self.revocations.issued(access, started)
            new_refresh = auth.get("RefreshToken")
            return TokenResult(
                access_token=access,
                id_token=auth["IdToken"],
                refresh_token=self._wrap(access, new_refresh) if new_refresh else refresh_token,
                expires_in=int(auth.get("ExpiresIn", 3600)),
            )
        challenge = response.get("ChallengeName")
        if not challenge or not response.get("Session") or not email:
            raise errors.UpstreamError()
        sealed = SealedChallenge(
            session=response["Session"],
            username=challenge_username(response, username or email),
            email=email,
            challenge=challenge,
        )
        return ChallengeResult(
            challenge=challenge,
            session=self.sealer.seal(sealed),
            parameters=_public_parameters(response.get("ChallengeParameters", {})),
        )

    def _wrap(self, access_token: str, refresh_token: str) -> str:
        """With a client secret, refresh needs the username for SECRET_HASH: carry it along."""
        if not self.gateway.client_secret:
            return refresh_token
        username = _claim(access_token, "username")
        encoded = base64.urlsafe_b64encode(username.encode()).decode().rstrip("=")
        return f"{_WRAP_PREFIX}{encoded}.{refresh_token}"

    @staticmethod
    def _unwrap(token: str) -> tuple[str | None, str]:
        if not token.startswith(_WRAP_PREFIX):
            return None, token
        encoded, _, upstream = token[len(_WRAP_PREFIX) :].partition(".")
        try:
            username = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise errors.InvalidTokenError("The refresh token is not valid.") from None
        if not upstream or not username:
            raise errors.InvalidTokenError("The refresh token is not valid.")
        return username, upstream


def token_identity(result: TokenResult, *, email: bool = True) -> tuple[str, str, str | None]:
    """``(sub, username, email)`` of tokens Cognito just issued (already trusted: not
    re-verified); the email is None when the ID token carries none, or is not asked for
    (``email=False``: the ID token is not decoded)."""
    access = unverified_claims(result.access_token)
    sub = str(access.get("sub"))
    username = str(access.get("username") or sub)
    if not email or not result.id_token:
        return sub, username, None
    address = unverified_claims(result.id_token).get("email")
    # An "email" claim that is no address (moto puts the sign-in name there) is not used.
    return sub, username, address if isinstance(address, str) and "@" in address else None


def _claim(token: str, name: str) -> str:
    data = unverified_claims(token)
    return str(data.get(name) or data.get("sub"))


def _public_parameters(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, text in raw.items():
        value: Any = text  # the attribute lists arrive as JSON text
        if key in {"USER_ID_FOR_SRP", "USERNAME"}:
            continue  # whose challenge it is travels sealed in the session
        if key in {"userAttributes", "requiredAttributes"}:
            try:
                value = json.loads(value)
            except (TypeError, ValueError):
                pass
            if key == "userAttributes" and isinstance(value, dict):
                value = {k.removeprefix("custom:"): v for k, v in value.items()}
            if key == "requiredAttributes" and isinstance(value, list):
                value = [str(v).removeprefix("userAttributes.") for v in value]
        out[key] = value
    return out
