"""The gateway used by ``authsvc dev``: behaves like Cognito where moto does not.

moto generates no sign-up code and accepts any, does not implement
``resend_confirmation_code``, and puts the forgot-password code in a response header with a
prefix nobody would type (REFERENCE.md). Here every code is six digits, delivered to the dev
outbox, checked, single use and expiring, with at most ``MAX_ATTEMPTS`` wrong tries: what a
person sees against real Cognito. It also revokes refresh tokens filed under the email
alias on admin sign-out, which real Cognito does and moto does not.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any

from authsvc import errors
from authsvc.auth.service import mask_email
from authsvc.cognito.errors import UnknownUserError, UserAlreadyConfirmedError
from authsvc.cognito.gateway import Attributes, CognitoGateway, from_attribute_list
from authsvc.config import Settings
from authsvc.dev.outbox import DevOutbox

SIGN_UP_CODE_TTL = 24 * 3600
RESET_CODE_TTL = 3600
MAX_ATTEMPTS = 5
MOTO_CODE_HEADER = "x-moto-forgot-password-confirmation-code"


@dataclass
class _Code:
    code: str
    expires_at: float
    attempts: int = 0
    upstream: str | None = None  # moto's own code, passed on once ours matched


def new_code() -> str:
    return f"{secrets.randbelow(1_000_000):06d}"


class DevCognitoGateway(CognitoGateway):
    def __init__(self, settings: Settings, outbox: DevOutbox, client: Any | None = None) -> None:
        super().__init__(settings, client)
        self.outbox = outbox
        self._sign_up: dict[str, _Code] = {}
        self._reset: dict[str, _Code] = {}
        self._lock = threading.Lock()
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
            code = new_code()
            with self._lock:
                self._reset[email] = _Code(code, time.time() + RESET_CODE_TTL, upstream=header)
            self.outbox.deliver(
                to=email,
                subject="Reset your password",
                kind="password_reset_code",
                body=f"Your password reset code is {code}. It expires in 1 hour.",
                code=code,
            )
        return response

    def confirm_forgot_password(self, email: str, code: str, new_password: str) -> None:
        entry = self._check(self._reset, email, code, consume=False)
        super().confirm_forgot_password(email, entry.upstream or code, new_password)
        with self._lock:
            self._reset.pop(email, None)

    # -- moto's refresh tokens are filed under the sign-in alias ------------------------

    def refresh(self, refresh_token: str, username: str | None = None) -> dict[str, Any]:
        # Real Cognito hashes the user's username (sub); moto the name used at sign-in.
        if username is not None:
            user = self._find(username)
            email = (
                from_attribute_list(user.get("UserAttributes", [])).get("email") if user else None
            )
            username = email or username
        return super().refresh(refresh_token, username)

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
