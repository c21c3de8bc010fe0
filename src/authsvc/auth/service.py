"""Self-service flows: sign-up, sign-in, challenges, refresh, sign-out, password reset."""

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
    MfaCodeAnswer,
    NewPasswordAnswer,
    TokenResult,
)
from authsvc.auth.sealing import ChallengeSealer, SealedChallenge
from authsvc.cognito.errors import AccountExistsError, PerUserLimitError, UnknownUserError
from authsvc.cognito.gateway import CognitoGateway, challenge_username, user_sub
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import AccessClaims, unverified_claims
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


class AuthService:
    def __init__(
        self,
        gateway: CognitoGateway,
        pool: PoolInfoCache,
        revocations: RevocationRegistry,
        sealer: ChallengeSealer,
    ) -> None:
        self.gateway = gateway
        self.pool = pool
        self.revocations = revocations
        self.sealer = sealer
        self._pending_sign_outs: set[str] = set()
        self._pending_lock = threading.Lock()
        # Refresh tokens another flow issued on its own app client: prefix -> refresh
        # (directory sign-in registers "dir1.").
        self.refresh_routes: dict[str, Callable[[str], TokenResult]] = {}

    # -- sign-up ------------------------------------------------------------------------

    def sign_up(
        self,
        email: str,
        password: str,
        *,
        given_name: str | None,
        family_name: str,
        attributes: dict[str, str],
    ) -> DeliveryResponse:
        info = self.pool.get()
        info.policy.check(password)
        values: dict[str, str | None] = {"family_name": family_name, **attributes}
        if given_name is not None:
            values["given_name"] = given_name
        cognito_attributes = info.writable_attributes(values)
        try:
            self.gateway.sign_up(email, password, cognito_attributes)
        except AccountExistsError:
            # Cognito's SignUp tells; we do not. Same answer as for a new address.
            log.info("sign-up for an existing account")
        return delivery_for(email)

    def confirm_sign_up(self, email: str, code: str) -> None:
        self.gateway.confirm_sign_up(email, code)

    def resend_code(
        self, email: str, *, code_issued: Callable[[], None] | None = None
    ) -> DeliveryResponse:
        """``code_issued`` runs unless Cognito refused to send a code (its per-user limit):
        an unknown or confirmed account has no code to guess, so it counts as issued."""
        try:
            self.gateway.resend_confirmation_code(email)
        except (UnknownUserError, errors.ValidationError, errors.InvalidTokenError):
            # Unknown or already confirmed: answer as if a code was sent.
            pass
        except PerUserLimitError:
            # Only a real account can hit Cognito's per-user resend limit (5 an hour):
            # answering it differently would tell which emails exist.
            log.info("resend hit a per-user Cognito limit")
            return delivery_for(email)
        if code_issued is not None:
            code_issued()
        return delivery_for(email)

    # -- sign-in ------------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> TokenResult | ChallengeResult:
        started = self.revocations.started()
        response = self.gateway.sign_in(email, password)
        return self._result(response, started, email=email, username=email)

    def open_challenge(self, request: NewPasswordAnswer | MfaCodeAnswer) -> SealedChallenge:
        """Whose challenge this is, from the sealed session alone; ``invalid_session`` when
        it is forged, expired, for another challenge, or the body names someone else."""
        sealed = self.sealer.open(request.session)
        if sealed.challenge != request.challenge:
            raise errors.InvalidSessionError("The session is for another challenge.")
        if request.email is not None and request.email != sealed.email:
            raise errors.InvalidSessionError("The session belongs to another user.")
        return sealed

    def answer_challenge(
        self, request: NewPasswordAnswer | MfaCodeAnswer, sealed: SealedChallenge
    ) -> TokenResult | ChallengeResult:
        answers: dict[str, str]
        if isinstance(request, NewPasswordAnswer):
            self.pool.get().policy.check(request.new_password)
            answers = {"NEW_PASSWORD": request.new_password}
        else:
            answers = {f"{request.challenge}_CODE": request.code}
        started = self.revocations.started()
        # As the user Cognito named when it issued the challenge, not an alias (and not
        # whatever the client says): Cognito requires it, and SECRET_HASH is over it.
        response = self.gateway.respond_to_challenge(
            request.challenge, sealed.session, sealed.username, answers
        )
        return self._result(response, started, email=sealed.email, username=sealed.username)

    def refresh(self, refresh_token: str) -> TokenResult:
        for prefix, route in self.refresh_routes.items():
            if refresh_token.startswith(prefix):
                return route(refresh_token)
        username, upstream_token = self._unwrap(refresh_token)
        if self.gateway.client_secret and username is None:
            raise errors.InvalidTokenError("The refresh token is not valid.")
        started = self.revocations.started()
        response = self.gateway.refresh(upstream_token, username)
        result = self._result(response, started, refresh_token=refresh_token)
        assert isinstance(result, TokenResult)
        return result

    def sign_out(self, claims: AccessClaims) -> None:
        # Revoke here first: whatever Cognito answers next, these tokens are dead.
        self.revocations.revoke(claims.sub)
        self.end_cognito_sessions(claims.username, access_token=claims.token)

    def end_cognito_sessions(self, username: str, *, access_token: str | None = None) -> None:
        """Revoke the user's refresh tokens at Cognito. If Cognito cannot be reached now, the
        sign-out is retried in the background (``retry_pending_sign_outs``) until it can:
        the access tokens are already dead locally, and the refresh tokens must follow."""
        if access_token is not None:
            try:
                self.gateway.global_sign_out(access_token)
                return
            except errors.AuthSvcError:
                pass  # revoked at Cognito already, or a fault: the admin call covers both
        try:
            self.gateway.admin_user_global_sign_out(username)
        except errors.NotFoundError:
            return  # no such user any more: nothing left to sign out
        except errors.AuthSvcError as exc:
            with self._pending_lock:
                self._pending_sign_outs.add(username)
            log.warning("Cognito sign-out queued for retry: %s", exc.code)

    def pending_sign_outs(self) -> frozenset[str]:
        """Usernames whose Cognito sign-out failed and waits for a retry."""
        with self._pending_lock:
            return frozenset(self._pending_sign_outs)

    def retry_pending_sign_outs(self) -> int:
        """Run by a background loop; returns how many queued sign-outs went through."""
        with self._pending_lock:
            pending = list(self._pending_sign_outs)
        done = 0
        for username in pending:
            try:
                self.gateway.admin_user_global_sign_out(username)
            except errors.NotFoundError:
                pass
            except errors.AuthSvcError:
                continue
            with self._pending_lock:
                self._pending_sign_outs.discard(username)
            done += 1
        return done

    # -- passwords ----------------------------------------------------------------------

    def forgot_password(
        self, email: str, *, code_issued: Callable[[], None] | None = None
    ) -> DeliveryResponse:
        """``code_issued`` as for ``resend_code``."""
        try:
            self.gateway.forgot_password(email)
        except (
            UnknownUserError,
            errors.UserNotConfirmedError,
            errors.InvalidTokenError,
            errors.ValidationError,
        ):
            pass
        except PerUserLimitError:
            # Cognito's per-user limits (LimitExceeded, code delivery) exist only for real
            # accounts: answering them differently would tell which emails exist.
            log.info("forgot-password hit a per-user Cognito limit")
            return delivery_for(email)
        if code_issued is not None:
            code_issued()
        return delivery_for(email)

    def reset_password(self, email: str, code: str, new_password: str) -> None:
        self.pool.get().policy.check(new_password)
        self.gateway.confirm_forgot_password(email, code, new_password)
        # A reset means the old password may be known to someone else: end every session,
        # locally first (that cannot be lost to a Cognito fault), then at Cognito.
        try:
            user = self.gateway.admin_get_user(email)
        except UnknownUserError:
            return
        self.revocations.revoke(user_sub(user))
        self.end_cognito_sessions(user["Username"])

    def change_password(self, claims: AccessClaims, current: str, new: str) -> None:
        self.pool.get().policy.check(new)
        self.gateway.change_password(claims.token, current, new)
        # Every session dies with the old password: locally first (that cannot be lost to a
        # Cognito fault), then the refresh tokens at Cognito.
        self.revocations.revoke(claims.sub)
        self.end_cognito_sessions(claims.username, access_token=claims.token)

    # -- helpers ------------------------------------------------------------------------

    def tokens_from(
        self, response: dict[str, Any], started: int, *, email: str
    ) -> TokenResult | ChallengeResult:
        """Turn a Cognito auth response obtained by another flow (invitations) into a result."""
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


def token_subject(access_token: str) -> str:
    """The ``sub`` of a token Cognito just issued (already trusted: not re-verified)."""
    return _claim(access_token, "sub")


def _claim(token: str, name: str) -> str:
    data = unverified_claims(token)
    return str(data.get(name) or data.get("sub"))


def _public_parameters(raw: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in raw.items():
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
