"""TOTP MFA: associate an authenticator app, verify it (which turns MFA on), turn it off.

Turning TOTP off, or replacing it once it is on, needs a recent authentication: the access
token's ``auth_time`` within ``reauth_max_age`` seconds, or the current password. A stolen
access token alone cannot take the second factor away or swap in the thief's app. After
such a change every session ends and the user is emailed a notice.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote, urlencode

from sqlalchemy.exc import SQLAlchemyError

from authsvc import errors
from authsvc.auth.service import AuthService
from authsvc.cognito.gateway import CognitoGateway, from_attribute_list
from authsvc.cognito.tokens import AccessClaims, unverified_claims
from authsvc.db import Database
from authsvc.email.outbox import Outbox
from authsvc.mfa.schemas import TotpSetup

log = logging.getLogger("authsvc.mfa")

TOTP = "SOFTWARE_TOKEN_MFA"


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": 6, "period": 30}
    )
    return f"otpauth://totp/{label}?{query}"


def auth_time(claims: AccessClaims) -> int | None:
    """When the user last entered their password (Cognito keeps it across refresh)."""
    value = unverified_claims(claims.token).get("auth_time")  # the token is verified already
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value


class MfaService:
    def __init__(
        self,
        gateway: CognitoGateway,
        issuer: str,
        *,
        auth: AuthService | None = None,
        db: Database | None = None,
        outbox: Outbox | None = None,
        reauth_max_age: int = 600,
    ) -> None:
        self.gateway = gateway
        self.issuer = issuer
        self.auth = auth
        self.db = db
        self.outbox = outbox
        self.reauth_max_age = reauth_max_age

    def start_totp(self, claims: AccessClaims, current_password: str | None = None) -> TotpSetup:
        user = self.gateway.get_user(claims.token)
        email = _email(user) or claims.username
        if _totp_on(user):
            # A new secret here is the first step of replacing the user's authenticator.
            self._require_recent(claims, email, current_password)
        # Base32 is case-insensitive, but some authenticator apps only take upper case.
        secret = self.gateway.associate_software_token(claims.token).upper()
        return TotpSetup(secret_code=secret, otpauth_uri=otpauth_uri(secret, email, self.issuer))

    def verify_totp(
        self, claims: AccessClaims, code: str, current_password: str | None = None
    ) -> None:
        user = self.gateway.get_user(claims.token)
        email = _email(user) or claims.username
        replacing = _totp_on(user)
        if replacing:
            self._require_recent(claims, email, current_password)
        status = self.gateway.verify_software_token(claims.token, code)
        if status != "SUCCESS":
            raise errors.InvalidCodeError()
        self.gateway.set_totp_preference(claims.token, enabled=True)
        if replacing:
            self._after_change(claims, email, "replaced")

    def disable_totp(self, claims: AccessClaims, current_password: str | None = None) -> None:
        user = self.gateway.get_user(claims.token)
        email = _email(user) or claims.username
        self._require_recent(claims, email, current_password)
        self.gateway.set_totp_preference(claims.token, enabled=False)
        self._after_change(claims, email, "turned off")

    # -- helpers ------------------------------------------------------------------------

    def _require_recent(
        self, claims: AccessClaims, email: str, current_password: str | None
    ) -> None:
        if current_password is not None:
            try:
                # Tokens or an MFA challenge: either way the password was right. (The
                # session this opens is ended with the others after the change.)
                self.gateway.sign_in(email, current_password)
            except errors.InvalidCredentialsError:
                raise errors.InvalidCurrentPasswordError() from None
            return
        at = auth_time(claims)
        if at is not None and time.time() - at <= self.reauth_max_age:
            return
        raise errors.ReauthenticationRequiredError()

    def _after_change(self, claims: AccessClaims, email: str, what: str) -> None:
        """The change took effect: nothing here may fail the request."""
        if self.auth is not None:
            self.auth.end_all_sessions(claims.sub, claims.username)
        if self.db is None or self.outbox is None:
            return
        text = (
            "Hello,\n\nTwo-step verification (authenticator app) was "
            f"{what} on your account at {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}."
            "\nEvery session was signed out.\n\nIf this was not you, reset your password now"
            " and turn two-step verification back on.\n"
        )
        try:
            with self.db.sessions() as session, session.begin():
                self.outbox.enqueue(
                    session,
                    kind="security_notice",
                    to=email,
                    subject=f"Two-step verification {what}",
                    text=text,
                )
        except SQLAlchemyError as exc:
            log.warning("security notice not queued: %s", type(exc).__name__)


def _email(user: dict[str, object]) -> str | None:
    attributes = user.get("UserAttributes", [])
    return from_attribute_list(attributes).get("email") if isinstance(attributes, list) else None


def _totp_on(user: dict[str, object]) -> bool:
    settings = user.get("UserMFASettingList") or []
    return isinstance(settings, list) and TOTP in settings
