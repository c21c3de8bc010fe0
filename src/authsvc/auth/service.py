"""Self-service flows: sign-up, sign-in, challenges, refresh, sign-out, password reset."""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from authsvc import errors
from authsvc.auth.repository import ContestedSignUpRepository
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
from authsvc.db import Database
from authsvc.revocation.service import RevocationRegistry

log = logging.getLogger("authsvc.auth")

_WRAP_PREFIX = "rt1."
# A contested confirmation in flight (confirm, then reset) is left alone this long by the
# repair loop of other instances: well above one confirmation's Cognito calls with retries.
CONFIRM_GRACE_S = 60.0


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

    # -- sign-up ------------------------------------------------------------------------

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

    def _sign_up_again(self, email: str, password: str, attributes: dict[str, str]) -> str | None:
        """A sign-up met an existing account (Cognito answers UsernameExists for an
        UNCONFIRMED one too). A confirmed account is left alone. An unconfirmed one is
        replaced by this registration, and the address is marked contested: whoever
        confirms it with the code from the mailbox must then set a new password, so no
        password chosen by a registrant who does not hold the mailbox survives confirmation,
        whichever registered last (see the README, "Pre-account hijacking").
        Returns the username of the account now holding the address, when known."""
        try:
            user = self.gateway.admin_get_user(email)
        except UnknownUserError:
            return None  # deleted meanwhile (a race with an admin or an invitation)
        if user.get("UserStatus") != "UNCONFIRMED":
            log.info("sign-up for an existing account")
            return str(user["Username"])
        # Marked first: if the database cannot say so, nothing is replaced (503).
        self._mark_contested(email)
        try:
            self.gateway.admin_delete_user(user["Username"])
        except UnknownUserError:
            pass  # a concurrent sign-up replaced it first
        try:
            created = self.gateway.sign_up(email, password, attributes)
        except AccountExistsError:
            # Another registration won the race; the mark holds for it as well.
            log.info("sign-up replaced concurrently")
            return None
        log.info("unconfirmed sign-up replaced; the address is contested")
        return str(created["UserSub"]) if created.get("UserSub") else None

    def confirm_sign_up(self, email: str, code: str) -> bool:
        """Returns True when the owner must now set a new password (a contested address):
        Cognito has emailed them a reset code, used at /v1/auth/password/reset."""
        contested = self._is_contested(email)  # read first: a failure changes nothing
        if contested:
            # Noted before Cognito confirms: should this instance stop before the reset
            # below, any instance's repair loop finds the row and finishes it.
            self._note_confirming(email, datetime.now(UTC))
        try:
            self.gateway.confirm_sign_up(email, code)
        except errors.AuthSvcError:
            if contested:
                self._note_confirming(email, None, quiet=True)
            raise
        if not contested:
            return False
        # The code proved the mailbox, not the password: any registrant may have chosen it.
        self._reset_contested(email)
        return True

    def repair_contested(self, grace_seconds: float = CONFIRM_GRACE_S) -> int:
        """Finish contested confirmations that were confirmed without the reset (an instance
        stopped, or Cognito failed, in between). Returns how many were finished."""
        if self.db is None:
            return 0
        before = datetime.now(UTC) - timedelta(seconds=grace_seconds)
        try:
            with self.db.sessions() as session:
                emails = ContestedSignUpRepository(session).confirming_before(before)
        except SQLAlchemyError:
            return 0
        done = 0
        for email in emails:
            try:
                user = self.gateway.admin_get_user(email)
            except UnknownUserError:
                self._clear_contested_quietly(email)
                continue
            except errors.AuthSvcError:
                continue
            status = user.get("UserStatus")
            if status == "UNCONFIRMED":  # that confirmation failed: wait for the next one
                self._note_confirming(email, None, quiet=True)
            elif status == "RESET_REQUIRED":
                self._clear_contested_quietly(email)
            elif self._reset_contested(email):
                done += 1
        return done

    def _reset_contested(self, email: str) -> bool:
        try:
            user = self.gateway.admin_get_user(email)
            self.gateway.admin_reset_user_password(user["Username"])
            # Tokens signed in with the old password between confirmation and reset die too.
            self.end_all_sessions(user_sub(user), user["Username"])
            self._clear_contested(email)
        except (errors.AuthSvcError, SQLAlchemyError) as exc:
            # The confirmation took effect: answer it as such; the row (noted as confirming)
            # stays, and the repair loop (repair_contested) finishes it.
            log.warning("contested sign-up: reset left to the repair loop (%s)", type(exc).__name__)
            return False
        return True

    def _note_confirming(self, email: str, at: datetime | None, *, quiet: bool = False) -> None:
        try:
            if self.db is None:
                return
            with self.db.sessions() as session, session.begin():
                ContestedSignUpRepository(session).confirming(email, at)
        except SQLAlchemyError:
            if quiet:
                return
            raise errors.UpstreamUnavailableError("The database is unavailable.") from None

    def _clear_contested_quietly(self, email: str) -> None:
        try:
            self._clear_contested(email)
        except SQLAlchemyError:
            pass

    def _mark_contested(self, email: str) -> None:
        if self.db is None:
            raise errors.UpstreamUnavailableError()
        try:
            with self.db.sessions() as session, session.begin():
                ContestedSignUpRepository(session).mark(email, datetime.now(UTC))
        except SQLAlchemyError:
            raise errors.UpstreamUnavailableError("The database is unavailable.") from None

    def _is_contested(self, email: str) -> bool:
        if self.db is None:
            return False
        try:
            with self.db.sessions() as session:
                return ContestedSignUpRepository(session).is_contested(email)
        except SQLAlchemyError:
            raise errors.UpstreamUnavailableError("The database is unavailable.") from None

    def _clear_contested(self, email: str) -> None:
        if self.db is None:
            return
        with self.db.sessions() as session, session.begin():
            ContestedSignUpRepository(session).clear(email)

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

    def sign_out(self, claims: AccessClaims, *, refresh_token: str | None = None) -> None:
        # Revoke here first: whatever Cognito answers next, these tokens are dead.
        self.revocations.revoke(claims.sub)
        self.end_cognito_sessions(claims.username, access_token=claims.token)
        if refresh_token is not None:
            self.revoke_refresh_token(refresh_token)

    def revoke_refresh_token(self, refresh_token: str) -> None:
        """The hosted UI's /oauth2/revoke for this session's refresh token (a federated
        session's, issued by /oauth2/token), best effort: GlobalSignOut above already ends
        it at Cognito. A fault queues it for ``retry_pending_sign_outs``."""
        if self.refresh_revoker is None:
            return
        if any(refresh_token.startswith(prefix) for prefix in self.refresh_routes):
            return  # another app client's token (the directory's): not this client's to revoke
        try:
            _, upstream = self._unwrap(refresh_token)
        except errors.InvalidTokenError:
            return
        if not self.refresh_revoker(upstream):
            with self._pending_lock:
                self._pending_revocations.add(upstream)

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

    # -- passwords ----------------------------------------------------------------------

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

    def end_all_sessions(self, sub: str, username: str) -> None:
        """After a change that has taken effect (reset, MFA change): end every session and
        never raise. Locally first (kept in memory and written later if the database is
        down), then at Cognito (queued for ``retry_pending_sign_outs`` if it fails)."""
        try:
            self.revocations.revoke(sub)
        except Exception:  # noqa: BLE001 - the change took effect: answer it as such
            log.exception("local revocation failed after a change that took effect")
        try:
            self.end_cognito_sessions(username)
        except Exception:  # noqa: BLE001 - as above; queue it instead of failing
            with self._pending_lock:
                self._pending_sign_outs.add(username)
            log.exception("Cognito sign-out queued after an unexpected failure")

    def change_password(self, claims: AccessClaims, current: str, new: str) -> None:
        self.pool.get().policy.check(new)
        self.gateway.change_password(claims.token, current, new)
        # Every session dies with the old password: locally first (that cannot be lost to a
        # Cognito fault), then the refresh tokens at Cognito.
        self.revocations.revoke(claims.sub)
        self.end_cognito_sessions(claims.username, access_token=claims.token)

    # -- helpers ------------------------------------------------------------------------

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
