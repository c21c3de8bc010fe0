"""The gateway used by ``authsvc dev``: behaves like Cognito where moto does not.

moto generates no sign-up code and accepts any, does not implement
``resend_confirmation_code``, and puts the forgot-password code in a response header with a
prefix nobody would type (REFERENCE.md). Here every code is six digits, delivered to the dev
outbox, checked, single use and expiring, with at most ``MAX_ATTEMPTS`` wrong tries: what a
person sees against real Cognito. It also revokes refresh tokens filed under the email
alias on admin sign-out, which real Cognito does and moto does not.

TOTP: moto hands every user the secret ``ASDFASDFASDF`` (60 bits, which pyotp and
authenticator apps refuse). Here each user gets a real 160-bit base32 secret, codes are
checked against it (RFC 6238, one step either side, as Cognito allows for clock drift), and
moto is then given the code of its own fixed secret, so its state (MFA verified, challenge
answered) follows.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any

from authsvc import errors
from authsvc.auth.service import mask_email
from authsvc.cognito.errors import (
    PasswordResetRequiredError,
    UnknownUserError,
    UserAlreadyConfirmedError,
)
from authsvc.cognito.gateway import Attributes, CognitoGateway, from_attribute_list
from authsvc.cognito.tokens import unverified_claims
from authsvc.config import Settings
from authsvc.dev.outbox import DevOutbox

SIGN_UP_CODE_TTL = 24 * 3600
RESET_CODE_TTL = 3600
MAX_ATTEMPTS = 5
MOTO_CODE_HEADER = "x-moto-forgot-password-confirmation-code"
MOTO_TOTP_SECRET = "ASDFASDFASDF"  # moto.cognitoidp.models.COGNITO_TOTP_MFA_SECRET
TOTP_STEP = 30
TOTP_SECRET_BYTES = 20  # 160 bits, RFC 4226's recommended length


def totp_code(secret: str, at: float) -> str:
    """RFC 6238 (HMAC-SHA1, 30 s, 6 digits): what pyotp and authenticator apps compute."""
    key = base64.b32decode(secret.upper() + "=" * (-len(secret) % 8))
    digest = hmac.new(key, struct.pack(">Q", int(at // TOTP_STEP)), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


def totp_matches(secret: str, code: str, at: float | None = None) -> bool:
    now = time.time() if at is None else at
    return any(
        secrets.compare_digest(totp_code(secret, now + k * TOTP_STEP), code) for k in (-1, 0, 1)
    )


def moto_totp_code() -> str:
    """The code moto accepts now: its fixed secret, current step only. Computed with at
    least half a second of the step left, so the call reaches moto within the same step."""
    left = TOTP_STEP - time.time() % TOTP_STEP
    if left < 0.5:
        time.sleep(left + 0.01)
    return totp_code(MOTO_TOTP_SECRET, time.time())


@dataclass
class _Code:
    code: str
    expires_at: float
    attempts: int = 0
    upstream: str | None = None  # moto's own code, passed on once ours matched


class _TotpSecrets:
    """(pool id, Cognito username) -> base32 secret, associated (pending) and verified
    (active). Process-wide, like moto's own state: every gateway on one emulator (the tests
    build several apps over one) sees the same users, so it must see the same secrets."""

    def __init__(self) -> None:
        self.pending: dict[tuple[str, str], str] = {}
        self.active: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()


_TOTP = _TotpSecrets()


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class DevCognitoGateway(CognitoGateway):
    def __init__(self, settings: Settings, outbox: DevOutbox, client: Any | None = None) -> None:
        super().__init__(settings, client)
        self.outbox = outbox
        self._sign_up: dict[str, _Code] = {}
        self._reset: dict[str, _Code] = {}
        self._lock = threading.Lock()
        self.client.meta.events.register(
            "before-parameter-build.cognito-identity-provider.RespondToAuthChallenge",
            self._mfa_challenge_code,
        )
        # moto answers an unknown, used or expired challenge session with
        # ResourceNotFoundException (which reads as a missing pool); Cognito with
        # NotAuthorizedException, i.e. invalid_session.
        self.client.meta.events.register(
            "after-call.cognito-identity-provider.RespondToAuthChallenge", self._moto_session_error
        )

    def _moto_session_error(self, parsed: dict[str, Any], **_: Any) -> None:
        error = parsed.get("Error") or {}
        if error.get("Code") == "ResourceNotFoundException" and error.get("Message") not in {
            self.client_id,
            self.pool_id,
        }:
            error["Code"] = "NotAuthorizedException"
            error["Message"] = "Invalid session for the user."

    # -- sign-up codes ------------------------------------------------------------------

    def sign_up(self, email: str, password: str, attributes: Attributes) -> dict[str, Any]:
        response = super().sign_up(email, password, attributes)
        self._send_sign_up_code(email)
        return response

    def resend_confirmation_code(self, email: str) -> dict[str, Any]:
        user = self._find(email)
        if user is None or user.get("UserStatus") != "UNCONFIRMED":
            # Cognito with PreventUserExistenceErrors answers as if it had sent a code.
            return {
                "CodeDeliveryDetails": {"Destination": mask_email(email), "DeliveryMedium": "EMAIL"}
            }
        self._send_sign_up_code(email)
        return {
            "CodeDeliveryDetails": {"Destination": mask_email(email), "DeliveryMedium": "EMAIL"}
        }

    def confirm_sign_up(self, email: str, code: str) -> None:
        with self._lock:
            pending = email in self._sign_up
        if not pending and (self._find(email) or {}).get("UserStatus") == "CONFIRMED":
            # Cognito answers NotAuthorizedException ("Current status is CONFIRMED"); moto
            # confirms again without a word.
            raise UserAlreadyConfirmedError()
        self._check(self._sign_up, email, code)
        super().confirm_sign_up(email, code)
        # Cognito verifies the address it delivered the code to; moto does not.
        self.client.admin_update_user_attributes(
            UserPoolId=self.pool_id,
            Username=email,
            UserAttributes=[{"Name": "email_verified", "Value": "true"}],
        )

    def _send_sign_up_code(self, email: str) -> None:
        code = new_code()
        with self._lock:
            self._sign_up[email] = _Code(code, time.time() + SIGN_UP_CODE_TTL)
        self.outbox.deliver(
            to=email,
            subject="Your verification code",
            kind="sign_up_code",
            body=f"Your verification code is {code}. It expires in 24 hours.",
            code=code,
        )

    # -- password reset codes -----------------------------------------------------------

    def forgot_password(self, email: str) -> dict[str, Any]:
        response = super().forgot_password(email)
        header = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get(MOTO_CODE_HEADER)
        if header and self._find(email) is not None:
            self._send_reset_code(email, upstream=header)
        return response

    def _send_reset_code(self, email: str, upstream: str | None) -> None:
        code = new_code()
        with self._lock:
            self._reset[email] = _Code(code, time.time() + RESET_CODE_TTL, upstream=upstream)
        self.outbox.deliver(
            to=email,
            subject="Reset your password",
            kind="password_reset_code",
            body=f"Your password reset code is {code}. It expires in 1 hour.",
            code=code,
        )

    def admin_reset_user_password(self, username: str) -> None:
        super().admin_reset_user_password(username)
        # Cognito emails a reset code to the verified address; moto sends none.
        user = self._find(username)
        email = from_attribute_list(user.get("UserAttributes", [])).get("email") if user else None
        if email:
            self._send_reset_code(email, upstream=None)

    def confirm_forgot_password(self, email: str, code: str, new_password: str) -> None:
        entry = self._check(self._reset, email, code, consume=False)
        super().confirm_forgot_password(email, entry.upstream or code, new_password)
        with self._lock:
            self._reset.pop(email, None)
        # Cognito confirms a RESET_REQUIRED user with its new password; moto leaves the
        # status as it was (and would answer the next sign-in with a challenge).
        user = self._find(email)
        if user is not None and user.get("UserStatus") == "RESET_REQUIRED":
            self.admin_set_user_password(user["Username"], new_password, permanent=True)

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        response = super().sign_in(email, password)
        # Cognito refuses a RESET_REQUIRED user's password (PasswordResetRequiredException);
        # moto's USER_PASSWORD_AUTH signs it in (or offers NEW_PASSWORD_REQUIRED), so the
        # password that was reset would still work. (An emulator-only lookup: with real
        # Cognito, sign-in makes no extra call.)
        user = self._find(email)
        if user is not None and user.get("UserStatus") == "RESET_REQUIRED":
            raise PasswordResetRequiredError()
        return response

    # -- TOTP with a real secret per user -----------------------------------------------

    def associate_software_token(self, access_token: str) -> str:
        super().associate_software_token(access_token)  # moto checks the token
        secret = base64.b32encode(secrets.token_bytes(TOTP_SECRET_BYTES)).decode()
        with _TOTP.lock:
            _TOTP.pending[self._token_user(access_token)] = secret
        return secret

    def verify_software_token(self, access_token: str, code: str) -> str:
        user = self._token_user(access_token)
        with _TOTP.lock:
            secret = _TOTP.pending.get(user)
        if secret is None or not totp_matches(secret, code):
            raise errors.InvalidCodeError()
        status = super().verify_software_token(access_token, moto_totp_code())
        with _TOTP.lock:
            if _TOTP.pending.get(user) == secret:
                _TOTP.active[user] = _TOTP.pending.pop(user)
        return status

    def totp_secret(self, username: str) -> str | None:
        """The secret in use for a user (None before a verified set-up)."""
        with _TOTP.lock:
            return _TOTP.active.get((self.pool_id, username))

    def _mfa_challenge_code(self, params: dict[str, Any], **_: Any) -> None:
        """Check a SOFTWARE_TOKEN_MFA answer against the user's own secret, then hand moto
        the code it expects (or one it refuses). A botocore hook, so it applies whatever
        the gateway's respond_to_challenge signature is."""
        if params.get("ChallengeName") != "SOFTWARE_TOKEN_MFA":
            return
        responses = params.get("ChallengeResponses") or {}
        code = str(responses.get("SOFTWARE_TOKEN_MFA_CODE", ""))
        user = self._find(str(responses.get("USERNAME", "")))
        secret = self.totp_secret(str(user["Username"])) if user else None
        if secret is None:
            return  # set up outside this gateway: moto checks its own secret
        expected = moto_totp_code()
        if totp_matches(secret, code):
            responses["SOFTWARE_TOKEN_MFA_CODE"] = expected
        else:
            responses["SOFTWARE_TOKEN_MFA_CODE"] = f"{(int(expected) + 1) % 1_000_000:06d}"

    def _token_user(self, access_token: str) -> tuple[str, str]:
        # The endpoint verified this token and moto accepted it just before: reading its
        # claims here is safe.
        return self.pool_id, str(unverified_claims(access_token).get("username", ""))

    # -- moto's refresh tokens are filed under the sign-in alias ------------------------

    def refresh(self, refresh_token: str, username: str | None = None) -> dict[str, Any]:
        # Real Cognito hashes the actual username (for this pool the UUID); moto hashes the
        # name the token was first issued to: the email after a password sign-in, the UUID
        # after a challenge answered as the actual username. Cognito's way first, then moto's.
        try:
            return super().refresh(refresh_token, username)
        except errors.InvalidTokenError:
            if username is None or not self.client_secret:
                raise
            user = self._find(username)
            email = (
                from_attribute_list(user.get("UserAttributes", [])).get("email") if user else None
            )
            if not email or email == username:
                raise
            return super().refresh(refresh_token, email)

    def admin_user_global_sign_out(self, username: str) -> None:
        super().admin_user_global_sign_out(username)
        user = self._find(username)
        email = from_attribute_list(user.get("UserAttributes", [])).get("email") if user else None
        if email and email != username:
            try:
                super().admin_user_global_sign_out(email)
            except UnknownUserError:
                pass

    # -- helpers ------------------------------------------------------------------------

    def _find(self, username: str) -> dict[str, Any] | None:
        try:
            return self.admin_get_user(username)
        except UnknownUserError:
            return None

    def _check(
        self, store: dict[str, _Code], email: str, code: str, *, consume: bool = True
    ) -> _Code:
        with self._lock:
            entry = store.get(email)
            if entry is None:
                raise errors.InvalidCodeError()
            if entry.expires_at < time.time():
                store.pop(email, None)
                raise errors.ExpiredCodeError()
            if entry.attempts >= MAX_ATTEMPTS:
                store.pop(email, None)
                raise errors.ExpiredCodeError("Too many wrong codes; request a new one.")
            if not secrets.compare_digest(entry.code, code):
                entry.attempts += 1
                raise errors.InvalidCodeError()
            if consume:
                store.pop(email, None)
            return entry
