"""Contested sign-ups (README, "Pre-account hijacking"): an unconfirmed registration replaced
by another marks the address contested; its confirmation then resets the password."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlalchemy.exc import SQLAlchemyError

from authsvc import errors
from authsvc.auth.repository import ContestedSignUpRepository
from authsvc.auth.sessions import AuthSessions
from authsvc.cognito.errors import AccountExistsError, UnknownUserError
from authsvc.cognito.gateway import user_sub

log = logging.getLogger("authsvc.auth")

# A contested confirmation in flight (confirm, then reset) is left alone this long by the
# repair loop of other instances: well above one confirmation's Cognito calls with retries.
CONFIRM_GRACE_S = 60.0


class ContestedSignUps(AuthSessions):
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
