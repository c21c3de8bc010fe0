"""Self-service flows: sign-up, sign-in, challenges, refresh, sign-out, password reset."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from authsvc import errors
from authsvc.auth.contested import ContestedSignUps
from authsvc.auth.results import (
    delivery_for,
    mask_email,
    token_identity,
)
from authsvc.auth.schemas import (
    ChallengeResult,
    DeliveryResponse,
    MfaCodeAnswer,
    NewPasswordAnswer,
    TokenResult,
)
from authsvc.auth.sealing import SealedChallenge
from authsvc.cognito.errors import AccountExistsError, PerUserLimitError, UnknownUserError
from authsvc.cognito.gateway import user_sub
from authsvc.cognito.tokens import AccessClaims, unverified_claims

# Names importers reach through this module.
__all__ = [
    "AuthService",
    "delivery_for",
    "mask_email",
    "token_identity",
]

log = logging.getLogger("authsvc.auth")


class AuthService(ContestedSignUps):
    """Self-service flows. The state and results are in ``AuthResults`` (results.py),
    ending sessions in ``AuthSessions`` (sessions.py), contested sign-ups in
    ``ContestedSignUps`` (contested.py)."""

    # -- sign-up ---------------------------------------------------------------------

    def sign_up(
        self,
        email: str,
        password: str,
        *,
        given_name: str | None,
        family_name: str,
        attributes: dict[str, str],
        concerns: Callable[[str], None] | None = None,
    ) -> DeliveryResponse:
        """``concerns`` is told the username of the account the sign-up concerns (the new
        one, or the one that held the address), for the audit log only."""
        info = self.pool.get()
        info.policy.check(password)
        values: dict[str, str | None] = {"family_name": family_name, **attributes}
        if given_name is not None:
            values["given_name"] = given_name
        cognito_attributes = info.writable_attributes(values, creating=True)
        info.check_required(cognito_attributes, supplied=frozenset({"email"}))
        try:
            created = self.gateway.sign_up(email, password, cognito_attributes)
        except AccountExistsError:
            # Cognito's SignUp tells; we do not. Same answer as for a new address.
            username = self._sign_up_again(email, password, cognito_attributes)
        else:
            # The pool signs in by email: Cognito names the user by its sub.
            username = created.get("UserSub")
        if username and concerns is not None:
            concerns(str(username))
        return delivery_for(email)

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

    # -- sign-in ---------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> TokenResult | ChallengeResult:
        started = self.revocations.started()
        response = self.gateway.sign_in(email, password)
        self._refuse_directory_member(response)
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
        self._refuse_directory_member(response)
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

    # -- sign-out --------------------------------------------------------------------

    def retry_pending_sign_outs(self) -> int:
        """Run by a background loop; returns how many queued sign-outs went through.
        Also finishes contested confirmations whose password reset was not made."""
        self.repair_contested()
        with self._pending_lock:
            pending = list(self._pending_sign_outs)
            revocations = list(self._pending_revocations)
        done = 0
        for token in revocations:
            if self.refresh_revoker is not None and not self.refresh_revoker(token):
                continue
            with self._pending_lock:
                self._pending_revocations.discard(token)
            done += 1
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

    # -- passwords -------------------------------------------------------------------

    def forgot_password(
        self, email: str, *, code_issued: Callable[[], None] | None = None
    ) -> DeliveryResponse:
        """``code_issued`` as for ``resend_code``."""
        if self._is_directory_member(email):
            # The directory owns this password: no code is sent, and the answer is the one
            # every other address gets (so it tells no one who is a directory user).
            log.info("forgot-password for a directory user: no code sent")
            if code_issued is not None:
                code_issued()
            return delivery_for(email)
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
        if self._is_directory_member(email):
            # No code was sent to them (see forgot_password); one issued before they joined
            # the directory must not set a password either. Reads like a wrong code.
            raise errors.InvalidCodeError()
        # Resolve the user *before* the reset: once the new password is set, nothing may
        # answer an error (the client would think the reset failed while the old sessions
        # live on). A lookup that fails here fails the request with nothing changed.
        try:
            user: dict[str, Any] | None = self.gateway.admin_get_user(email)
        except UnknownUserError:
            user = None  # Cognito answers the reset as a wrong code: let it say so
        self.gateway.confirm_forgot_password(email, code, new_password)
        if user is not None:
            self.end_all_sessions(user_sub(user), user["Username"])

    def change_password(self, claims: AccessClaims, current: str, new: str) -> None:
        self.pool.get().policy.check(new)
        self.gateway.change_password(claims.token, current, new)
        # Every session dies with the old password: locally first (that cannot be lost to a
        # Cognito fault), then the refresh tokens at Cognito.
        self.revocations.revoke(claims.sub)
        self.end_cognito_sessions(claims.username, access_token=claims.token)

    # -- helpers ---------------------------------------------------------------------

    def _is_directory_member(self, email: str) -> bool:
        group = self.password_refused_group
        if not group:
            return False
        try:
            return group in self.gateway.admin_list_groups_for_user(email)
        except (UnknownUserError, errors.NotFoundError):
            return False

    def _refuse_directory_member(self, response: dict[str, Any]) -> None:
        """A directory user's Cognito password is not theirs to use (it is random, or was set
        behind the directory's back): refuse the tokens exactly like a wrong password. Read
        from the token Cognito just issued, so sign-in makes no extra call."""
        group = self.password_refused_group
        auth = response.get("AuthenticationResult")
        if not group or not auth:
            return
        groups = unverified_claims(auth["AccessToken"]).get("cognito:groups") or []
        if group not in groups:
            return
        # The tokens never leave authsvc; the refresh token is revoked at Cognito all the
        # same (best effort: the user's directory sessions are left alone, so no global
        # sign-out). moto has no RevokeToken: there this fails quietly, and the refresh
        # token is simply never handed out.
        refresh = auth.get("RefreshToken")
        if refresh:
            try:
                self.gateway.revoke_token(refresh)
            except errors.AuthSvcError as exc:
                log.info("revoking a refused directory user's refresh token failed: %s", exc.code)
        log.info("password sign-in refused for a directory user")
        raise errors.InvalidCredentialsError()
