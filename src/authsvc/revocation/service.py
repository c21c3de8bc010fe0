"""Tokens that die on sign-out (DESIGN §5).

Postgres (or SQLite) holds one row per user: ``revoked_at``. Each instance mirrors the
table in memory and polls it for changes, so a revocation made on any instance is seen by
every other within ``poll_interval`` (< 1 s). Verification then costs a dict lookup:

- ``iat`` after the revocation's second → valid;
- ``iat`` before it → revoked;
- ``iat`` in the same second → valid only if authsvc itself handed the token out after the
  revocation (recorded in ``token_allowance``).

Sign-in stays free of database I/O: a freshly issued token is checked against the in-memory
mirror, and kept for a few seconds in a small ring so that a revocation learnt later from
another instance (within the poll interval) can still be matched against it. The one window
left — another instance revokes, and this one issues a token in the same second before its
next poll, and that token is checked elsewhere before the poll — fails safe: the token is
refused, never wrongly accepted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError

from authsvc import metrics
from authsvc.cognito.tokens import AccessClaims, unverified_claims
from authsvc.db import Database
from authsvc.revocation.repository import RevocationRepository

log = logging.getLogger("authsvc.revocation")

# Access tokens live at most one day in Cognito: older revocations cannot matter.
MAX_TOKEN_LIFETIME_S = 24 * 3600


# How long issued tokens are remembered for matching against revocations learnt later.
RECENT_WINDOW_US = 5_000_000


def _now_us() -> int:
    return time.time_ns() // 1000


class LedgerNotSyncedError(Exception):
    """The revocation ledger has not been read since start-up."""


@dataclass(frozen=True, slots=True)
class _Issued:
    jti: str
    sub: str
    iat: int
    exp: int
    started_us: int


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
        self._recent: deque[_Issued] = deque()
        self._unsaved: dict[str, int] = {}
        self._no_allowance: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.healthy = True
        # Set by start() until the ledger has been read once: a revocation made before this
        # instance started may be unknown here, so tokens issued up to that second (s) are
        # refused until then.
        self._unsynced_since: int | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self._unsynced_since = self._clock_us() // 1_000_000
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
            if self._unsaved:
                self._flush_unsaved()
            self.sync()
            if time.monotonic() - last_prune > 600:
                last_prune = time.monotonic()
                self._prune()

    def sync(self) -> None:
        """Pull revocations newer than the last one seen."""
        now = self._clock_us()
        try:
            with self.db.sessions() as session:
                # Re-read a little behind the high-water mark: a row committed late with an
                # earlier timestamp must not be missed.
                rows = RevocationRepository(session).changed_since(self._high_water - 5_000_000)
            self.healthy = True
        except SQLAlchemyError as exc:
            if self._unsynced_since is not None and self.healthy:
                log.warning(
                    "revocation ledger unreadable at start-up: tokens issued before start-up"
                    " are refused until it is read"
                )
            if self.healthy:
                log.warning("revocation sync failed: %s", type(exc).__name__)
            self.healthy = False
            return
        learnt: list[tuple[str, int]] = []
        with self._lock:
            for sub, at, recorded in rows:
                if at > self._revoked.get(sub, 0):
                    self._revoked[sub] = at
                    learnt.append((sub, at))
                # The mark follows when rows were *written*. A row stamped in the future (a
                # writer whose clock runs ahead) must not move it past now: later rows from
                # correct clocks would be missed.
                self._high_water = max(self._high_water, min(recorded, now))
        self._unsynced_since = None
        for sub, at in learnt:
            self._allow_recent(sub, at)

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
        """Kill every token of ``sub`` issued until now. Returns the revocation time (µs).

        This instance refuses the tokens at once. If the database is down, the revocation
        is kept and written by the poller as soon as it is back (other instances learn of
        it then): a sign-out never fails because the database does.
        """
        at = self._clock_us()
        with self._lock:
            if at > self._revoked.get(sub, 0):
                self._revoked[sub] = at
        if not self._persist(sub, at):
            with self._lock:
                self._unsaved[sub] = max(at, self._unsaved.get(sub, 0))
            metrics.count("authsvc_revocations", "held")
        else:
            metrics.count("authsvc_revocations", "saved")
        return at

    def unsaved_count(self) -> int:
        return len(self._unsaved)

    def _persist(self, sub: str, at: int) -> bool:
        try:
            with self.db.sessions() as session, session.begin():
                RevocationRepository(session).upsert(sub, at, self._clock_us())
            return True
        except SQLAlchemyError as exc:
            log.warning(
                "revocation kept in memory until the database is back: %s", type(exc).__name__
            )
            return False

    def _flush_unsaved(self) -> None:
        with self._lock:
            pending = list(self._unsaved.items())
        for sub, at in pending:
            if not self._persist(sub, at):
                return
            with self._lock:
                if self._unsaved.get(sub) == at:
                    del self._unsaved[sub]

    def started(self) -> int:
        """Call before asking Cognito for tokens; pass the value to ``issued``."""
        return self._clock_us()

    def issued(self, access_token: str, started_us: int) -> None:
        """Note a token authsvc just handed out (no I/O unless a revocation shares its second).

        Only a revocation already made before the Cognito call began can be proven older
        than the token; one that raced with the call leaves the token refused.
        """
        try:
            claims = unverified_claims(access_token)
            issued = _Issued(
                jti=str(claims["jti"]),
                sub=str(claims["sub"]),
                iat=int(str(claims["iat"])),
                exp=int(str(claims["exp"])),
                started_us=started_us,
            )
        except (KeyError, TypeError, ValueError, IndexError):
            return
        horizon = self._clock_us() - RECENT_WINDOW_US
        with self._lock:
            self._recent.append(issued)
            while self._recent and self._recent[0].started_us < horizon:
                self._recent.popleft()
            revoked_at = self._revoked.get(issued.sub)
        if revoked_at is not None:
            self._maybe_allow(issued, revoked_at)

    def _allow_recent(self, sub: str, revoked_at: int) -> None:
        with self._lock:
            candidates = [t for t in self._recent if t.sub == sub]
        for issued in candidates:
            self._maybe_allow(issued, revoked_at)

    def _maybe_allow(self, issued: _Issued, revoked_at: int) -> None:
        if issued.iat > revoked_at // 1_000_000 or issued.started_us <= revoked_at:
            return  # plainly after the revocation, or not provably so
        try:
            with self.db.sessions() as session, session.begin():
                RevocationRepository(session).allow(
                    issued.jti, issued.sub, issued.started_us, issued.exp
                )
        except SQLAlchemyError as exc:
            log.warning("could not record issued token: %s", type(exc).__name__)
            return
        with self._lock:
            self._issued_after[issued.jti] = issued.started_us

    # -- reads --------------------------------------------------------------------------

    def check_synced(self) -> None:
        """For /readyz: raises until the ledger has been read once since start-up."""
        if self._unsynced_since is not None:
            raise LedgerNotSyncedError()

    def is_revoked(self, claims: AccessClaims) -> bool:
        unsynced_since = self._unsynced_since
        if unsynced_since is not None and claims.issued_at <= unsynced_since:
            # Not read since start-up: this token may have been revoked before; refuse it
            # (a refresh gives one issued after start-up, which this instance can judge).
            return True
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
        # A token found without an allowance is not looked up again for a moment: a client
        # retrying such a token must not put a database round trip (or, in an outage, a
        # connect timeout) on every request. An allowance is only ever written before its
        # token is handed out, or by the poller within its interval, so this cannot hide one
        # for longer than the poll would.
        if self._no_allowance.get(claims.jti, 0.0) > time.monotonic():
            return None
        try:
            with self.db.sessions() as session:
                known = RevocationRepository(session).issued_after(claims.jti, claims.sub)
        except SQLAlchemyError:
            known = None
        with self._lock:
            if known is not None:
                self._issued_after[claims.jti] = known
            else:
                if len(self._no_allowance) > 10_000:
                    self._no_allowance.clear()
                self._no_allowance[claims.jti] = time.monotonic() + self.poll_interval
        return known
