"""Rate limits (the ``limits`` library): memory by default, Redis to share them across
instances. A limited request is refused before any Cognito call.

Two kinds of rule:

- *request* rules count every request (per client IP, or per identifier);
- *failure* rules count only failures (wrong password, wrong code) per identifier and are
  checked before the call, so a locked identifier costs Cognito nothing. An unknown
  identifier is counted exactly like a known one. Code failures are cleared when a new
  code is sent, so "5 wrong codes, then a new code is needed".

Keys are hashed: no email address is written to Redis. If the storage itself is down the
limits fail open (and say so in the log): an outage of the limiter must not lock every
user out.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from limits import RateLimitItem, parse_many, storage, strategies

from authsvc import errors
from authsvc.config import Settings

log = logging.getLogger("authsvc.ratelimit")

# Redis answers in well under a millisecond; the client's default (5 s per command) would
# make every request wait seconds on a hung server. Query parameters in the URL override.
REDIS_TIMEOUTS = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
# After a storage error the limits are off (fail open) this long before the storage is
# tried again, so an outage costs one request a timeout, not every request several.
STORAGE_RETRY_SECONDS = 5.0


@dataclass(frozen=True)
class Rule:
    name: str
    items: tuple[RateLimitItem, ...]


def _key(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:32]


class RateLimits:
    # rule name -> setting holding its limits
    RULES = {
        "sign_in_ip": "rate_limit_sign_in_ip",
        "sign_in_failures": "rate_limit_sign_in_failures",
        "email_ip": "rate_limit_email_ip",
        "email_identifier": "rate_limit_email_identifier",
        "forgot_identifier": "rate_limit_forgot_identifier",
        "verify_ip": "rate_limit_verify_ip",
        "code_failures": "rate_limit_code_failures",
        "sign_up_code_failures": "rate_limit_sign_up_code_failures",
        "refresh_ip": "rate_limit_refresh_ip",
        "invitation_ip": "rate_limit_invitation_ip",
    }

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        uri = settings.redis_url or "memory://"
        options = {"key_prefix": "authsvc", **REDIS_TIMEOUTS} if uri.startswith("redis") else {}
        self.storage = storage.storage_from_string(uri, **options)
        self.limiter = strategies.MovingWindowRateLimiter(self.storage)
        self.rules = {
            name: Rule(name, tuple(parse_many(getattr(settings, setting))))
            for name, setting in self.RULES.items()
        }
        self.storage_errors = 0
        self._storage_down_until = 0.0

    def hit(self, rule: str, key: str | None) -> None:
        """Count one request; refuse it (429) if the rule is exhausted."""
        if not self.enabled or not key:
            return
        for item in self.rules[rule].items:
            if not self._safe(lambda item=item: self.limiter.hit(item, rule, _key(key))):
                raise errors.RateLimitedError(self._retry_after(rule, item, key))

    def check(self, rule: str, key: str | None) -> None:
        """Refuse (429) if the failures counted so far exhaust the rule; count nothing."""
        if not self.enabled or not key:
            return
        for item in self.rules[rule].items:
            if not self._safe(lambda item=item: self.limiter.test(item, rule, _key(key))):
                raise errors.RateLimitedError(self._retry_after(rule, item, key))

    def fail(self, rule: str, key: str | None) -> None:
        """Count one failure."""
        if not self.enabled or not key:
            return
        for item in self.rules[rule].items:
            self._safe(lambda item=item: self.limiter.hit(item, rule, _key(key)))

    def reset(self, rule: str, key: str | None) -> None:
        if not self.enabled or not key:
            return
        for item in self.rules[rule].items:
            self._safe(lambda item=item: self.limiter.clear(item, rule, _key(key)) or True)

    @contextmanager
    def failures(
        self, rule: str, key: str | None, *kinds: type[errors.AuthSvcError]
    ) -> Iterator[None]:
        """Refuse up front when exhausted; count the block's failures of the given kinds."""
        self.check(rule, key)
        try:
            yield
        except kinds:
            self.fail(rule, key)
            raise

    def _retry_after(self, rule: str, item: RateLimitItem, key: str) -> int:
        try:
            stats = self.limiter.get_window_stats(item, rule, _key(key))
            return max(1, int(stats.reset_time - time.time()) + 1)
        except Exception:  # noqa: BLE001
            return int(item.get_expiry())

    def _safe(self, call: object) -> bool:
        if time.monotonic() < self._storage_down_until:
            return True  # known to be down: do not make every request wait on it
        try:
            return bool(call())  # type: ignore[operator]
        except Exception as exc:  # noqa: BLE001 - fail open on a storage outage
            self.storage_errors += 1
            self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            log.warning(
                "rate-limit storage unavailable (%s); not limiting for %.0f s",
                type(exc).__name__,
                STORAGE_RETRY_SECONDS,
            )
            return True
