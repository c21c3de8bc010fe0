"""Tokens that die on sign-out (DESIGN §5).

Postgres (or SQLite) holds one row per user: ``revoked_at``. Each instance mirrors the
table in memory and polls it for changes, so a revocation made on any instance is seen by
every other within ``poll_interval`` (< 1 s). Verification then costs a dict lookup:

- ``iat`` after the revocation's second → valid;
- ``iat`` before it → revoked;
- ``iat`` in the same second → valid only if authsvc itself handed the token out after the
  revocation (recorded in ``token_allowance`` at issue time).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import jwt
from sqlalchemy.exc import SQLAlchemyError

from authsvc.cognito.tokens import AccessClaims
from authsvc.db import Database
from authsvc.revocation.repository import RevocationRepository

log = logging.getLogger("authsvc.revocation")

# Access tokens live at most one day in Cognito: older revocations cannot matter.
MAX_TOKEN_LIFETIME_S = 24 * 3600


def _now_us() -> int:
    return time.time_ns() // 1000


class RevocationRegistry:
    def __init__(
        self, db: Database, *, poll_interval: float = 0.25, clock_us: Callable[[], int] = _now_us
    ) -> None:
        self.db = db
        self.poll_interval = poll_interval
        self._clock_us = clock_us
        self._revoked: dict[str, int] = {}
        self._high_water = 0
        self._issued_after: dict[str, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.healthy = True

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.sync()
        self._thread = threading.Thread(target=self._run, name="revocation-poll", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        last_prune = 0.0
        while not self._stop.wait(self.poll_interval):
            self.sync()
            if time.monotonic() - last_prune > 600:
                last_prune = time.monotonic()
                self._prune()

    def sync(self) -> None:
        """Pull revocations newer than the last one seen."""
        try:
            with self.db.sessions() as session:
                # Re-read a little behind the high-water mark: a row committed late with an
                # earlier timestamp must not be missed.
                rows = RevocationRepository(session).changed_since(self._high_water - 5_000_000)
            self.healthy = True
        except SQLAlchemyError as exc:
            if self.healthy:
                log.warning("revocation sync failed: %s", type(exc).__name__)
            self.healthy = False
            return
        with self._lock:
            for sub, at in rows:
                if at > self._revoked.get(sub, 0):
                    self._revoked[sub] = at
                self._high_water = max(self._high_water, at)

    def _prune(self) -> None:
        horizon = self._clock_us() - MAX_TOKEN_LIFETIME_S * 1_000_000
        with self._lock:
            for sub in [s for s, at in self._revoked.items() if at < horizon]:
                del self._revoked[sub]
            for jti in [j for j, at in self._issued_after.items() if at < horizon]:
                del self._issued_after[jti]
        try:
            with self.db.sessions() as session, session.begin():
                RevocationRepository(session).prune(int(time.time()), horizon)
        except SQLAlchemyError:
            pass

    # -- writes -------------------------------------------------------------------------

    def revoke(self, sub: str) -> int:
        """Kill every token of ``sub`` issued until now. Returns the revocation time (µs)."""
        at = self._clock_us()
        with self.db.sessions() as session, session.begin():
            RevocationRepository(session).upsert(sub, at)
        with self._lock:
            if at > self._revoked.get(sub, 0):
                self._revoked[sub] = at
        return at

    def started(self) -> int:
        """Call before asking Cognito for tokens; pass the value to ``issued``."""
        return self._clock_us()

    def issued(self, access_token: str, started_us: int) -> None:
        """Record a token authsvc just handed out, if a revocation shares its second.

        Only a revocation that was already committed before the Cognito call began can be
        proven older than the token; one that raced with the call leaves the token refused.
        """
        try:
            claims = jwt.decode(access_token, options={"verify_signature": False})
            sub, iat, jti, exp = (
                claims["sub"],
                int(claims["iat"]),
                claims["jti"],
                int(claims["exp"]),
            )
        except (jwt.PyJWTError, KeyError, TypeError, ValueError):
            return
        try:
            with self.db.sessions() as session, session.begin():
                repo = RevocationRepository(session)
                revoked_at = repo.get(sub)
                if revoked_at is None or iat > revoked_at // 1_000_000:
                    return
                if revoked_at < started_us:
                    repo.allow(jti, sub, started_us, exp)
                    with self._lock:
                        self._issued_after[jti] = started_us
        except SQLAlchemyError as exc:
            log.warning("could not record issued token: %s", type(exc).__name__)

    # -- reads --------------------------------------------------------------------------

    def is_revoked(self, claims: AccessClaims) -> bool:
        revoked_at = self._revoked.get(claims.sub)
        if revoked_at is None:
            return False
        revoked_second = revoked_at // 1_000_000
        if claims.issued_at > revoked_second:
            return False
        if claims.issued_at < revoked_second:
            return True
        issued_after = self._known_issued_after(claims)
        # Same second: alive only if provably issued after the *latest* revocation.
        return issued_after is None or issued_after <= revoked_at

    def _known_issued_after(self, claims: AccessClaims) -> int | None:
        known = self._issued_after.get(claims.jti)
        if known is not None:
            return known
        try:
            with self.db.sessions() as session:
                known = RevocationRepository(session).issued_after(claims.jti, claims.sub)
        except SQLAlchemyError:
            return None
        if known is not None:
            with self._lock:
                self._issued_after[claims.jti] = known
        return known
