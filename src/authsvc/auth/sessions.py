"""Ending sessions: locally first (revocation), then at Cognito, queued for a retry when
Cognito cannot be reached."""

from __future__ import annotations

import logging

from authsvc import errors
from authsvc.auth.results import AuthResults
from authsvc.cognito.tokens import AccessClaims

log = logging.getLogger("authsvc.auth")


class AuthSessions(AuthResults):
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
