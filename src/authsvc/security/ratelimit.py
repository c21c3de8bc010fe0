"""Rate limits (the ``limits`` library): memory by default, Redis to share them across
instances. A limited request is refused before any Cognito call.

Kinds of rule:

- *request* rules count every request (per client address, or per identifier);
- *failure* rules count only failures (wrong password, wrong code) and are checked before
  the call, so a locked key costs Cognito nothing. An unknown identifier is counted exactly
  like a known one;
- *spread* rules protect an account without handing its lock to strangers: requests or
  failures are counted per (identifier, client address) — the hard limit, which only
  that address can exhaust — and per identifier, a higher *ceiling*. Over the ceiling,
  only addresses that have counted against it themselves are refused (429 with the time
  until the ceiling has room), so a distributed guesser stalls while the owner, from an
  address with no failures of its own, is still served.

Wrong codes are counted per issued code: the count is cleared only when a new code really
went out (``code_issued``), so asking for a code that is never sent buys no new guesses.

Keys are HMACs (with ``AUTHSVC_SECRET_KEY``) of the identifier: no email address, and no
hash that could be checked against a list of addresses, is written to Redis. Client
addresses are counted per IPv4 address or per IPv6 /64. If the storage itself is down the
limits fail open (and say so in the log): an outage of the limiter must not lock every
user out.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

from limits import RateLimitItem, parse_many, storage, strategies

from authsvc import errors, metrics
from authsvc.clientip import limit_address
from authsvc.config import Settings

log = logging.getLogger("authsvc.ratelimit")

# Redis answers in well under a millisecond; the client's default (5 s per command) would
# make every request wait seconds on a hung server. Query parameters in the URL override.
REDIS_TIMEOUTS: dict[str, float] = {"socket_timeout": 0.5, "socket_connect_timeout": 0.5}
# After a storage error the limits are off (fail open) this long before the storage is
# tried again, so an outage costs one request a timeout, not every request several.
STORAGE_RETRY_SECONDS = 5.0
# Over a spread rule's ceiling, an address is still served while it has counted fewer than
# this many events of its own for the identifier: the owner's one typo, or one more code
# after others burned the first, does not make them wait; a guesser's address gets at most
# this many tries once the ceiling is full.
OVER_CEILING_ALLOWANCE = 2


@dataclass(frozen=True)
class Rule:
    name: str
    items: tuple[RateLimitItem, ...]


def hashed_key(secret: bytes, value: str) -> str:
    """The storage key for ``value``: an HMAC, so that nobody holding the Redis data
    (without the secret) can test a list of email addresses against it."""
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()[:32]


def _pair(identifier: str, ip: str | None) -> str:
    # The unit separator cannot occur in an email address or an IP address.
    return f"{identifier}\x1f{limit_address(ip) or '-'}"


class RateLimits:
    # rule name -> setting holding its limits
    RULES = {
        "sign_in_ip": "rate_limit_sign_in_ip",
        "sign_in_failures": "rate_limit_sign_in_failures",
        "sign_in_failures_ip": "rate_limit_sign_in_failures_ip",
        "sign_in_identifier_failures": "rate_limit_sign_in_identifier_failures",
        "email_ip": "rate_limit_email_ip",
        "email_identifier": "rate_limit_email_identifier",
        "forgot_identifier": "rate_limit_forgot_identifier",
        "forgot_ceiling": "rate_limit_forgot_ceiling",
        "resend_identifier": "rate_limit_resend_identifier",
        "resend_ceiling": "rate_limit_resend_ceiling",
        "verify_ip": "rate_limit_verify_ip",
        "code_failures": "rate_limit_code_failures",
        "sign_up_code_failures": "rate_limit_sign_up_code_failures",
        "refresh_ip": "rate_limit_refresh_ip",
        "invitation_ip": "rate_limit_invitation_ip",
    }

    def __init__(self, settings: Settings) -> None:
        self.enabled = settings.rate_limits_enabled
        # Instances sharing Redis share AUTHSVC_SECRET_KEY (`serve` requires it); dev mode
        # without one counts in memory, where a per-process key is enough.
        self._secret = (
            settings.secret_key.get_secret_value().encode()
            if settings.secret_key
            else secrets.token_bytes(32)
        )
        uri = settings.redis_url or "memory://"
        options: dict[str, float | str] = (
            {"key_prefix": "authsvc", **REDIS_TIMEOUTS} if uri.startswith("redis") else {}
        )
        self.storage = storage.storage_from_string(uri, **options)
        self.limiter = strategies.MovingWindowRateLimiter(self.storage)
        self.rules = {
            name: Rule(name, tuple(parse_many(getattr(settings, setting))))
            for name, setting in self.RULES.items()
        }
        self.storage_errors = 0
        self._storage_down_until = 0.0

    def _key(self, rule: str, value: str) -> str:
        if rule.endswith("_ip"):
            value = limit_address(value) or value
        return hashed_key(self._secret, value)

    def hit(self, rule: str, key: str | None) -> None:
        """Count one request; refuse it (429) if the rule is exhausted."""
        if not self.enabled or not key:
            return
        hashed = self._key(rule, key)
        for item in self.rules[rule].items:
            if not self._safe(partial(self.limiter.hit, item, rule, hashed)):
                raise self._refused(rule, item, key)

    def check(self, rule: str, key: str | None) -> None:
        """Refuse (429) if the failures counted so far exhaust the rule; count nothing."""
        if not self.enabled or not key:
            return
        hashed = self._key(rule, key)
        for item in self.rules[rule].items:
            if not self._safe(partial(self.limiter.test, item, rule, hashed)):
                raise self._refused(rule, item, key)

    def fail(self, rule: str, key: str | None) -> None:
        """Count one failure."""
        if not self.enabled or not key:
            return
        hashed = self._key(rule, key)
        for item in self.rules[rule].items:
            self._safe(partial(self.limiter.hit, item, rule, hashed))

    def reset(self, rule: str, key: str | None) -> None:
        if not self.enabled or not key:
            return
        hashed = self._key(rule, key)
        for item in self.rules[rule].items:
            self._safe(partial(self._clear, item, rule, hashed))

    def _clear(self, item: RateLimitItem, rule: str, hashed: str) -> bool:
        self.limiter.clear(item, rule, hashed)
        return True

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

    # -- spread rules: per (identifier, address), with a per-identifier ceiling -------------

    def check_spread(
        self, pair_rule: str, ceiling_rule: str, identifier: str, ip: str | None
    ) -> None:
        """Refuse (429) when this address has exhausted its own count for the identifier,
        or when the identifier's ceiling is full and this address has counted against it
        (``OVER_CEILING_ALLOWANCE`` or more events of its own): an address with little
        or nothing counted of its own is still served. Counts nothing.

        The owner's usual request (nothing counted) costs one storage call, as a plain
        failure rule does: the ceiling is only looked at for addresses it could refuse."""
        if not self.enabled or not identifier:
            return
        pair = _pair(identifier, ip)
        first, *rest = self.rules[pair_rule].items
        own = self._own(pair_rule, pair)
        if own >= first.amount:
            raise self._refused(pair_rule, first, pair)
        for item in rest:
            key = self._key(pair_rule, pair)
            if not self._safe(partial(self.limiter.test, item, pair_rule, key)):
                raise self._refused(pair_rule, item, pair)
        if own < OVER_CEILING_ALLOWANCE:
            return
        key = self._key(ceiling_rule, identifier)
        for item in self.rules[ceiling_rule].items:
            if not self._safe(partial(self.limiter.test, item, ceiling_rule, key)):
                raise self._refused(ceiling_rule, item, identifier)

    def count_spread(
        self, pair_rule: str, ceiling_rule: str, identifier: str, ip: str | None
    ) -> None:
        """Count one event against the (identifier, address) pair and the ceiling."""
        self.fail(pair_rule, _pair(identifier, ip))
        self.fail(ceiling_rule, identifier)

    def hit_spread(
        self, pair_rule: str, ceiling_rule: str, identifier: str, ip: str | None
    ) -> None:
        """A request rule spread over addresses: check, then count it (429 when refused)."""
        self.check_spread(pair_rule, ceiling_rule, identifier, ip)
        self.hit(pair_rule, _pair(identifier, ip))
        self.fail(ceiling_rule, identifier)

    def reset_spread(
        self, pair_rule: str, ceiling_rule: str, identifier: str, ip: str | None
    ) -> None:
        self.reset(pair_rule, _pair(identifier, ip))
        self.reset(ceiling_rule, identifier)

    @contextmanager
    def sign_in_failures(self, email: str, ip: str | None) -> Iterator[None]:
        """Sign-in failures: per (email, address) (hard), per address across emails (hard:
        one address spraying many accounts), and per email (the ceiling, see above)."""
        self.check("sign_in_failures_ip", ip)
        self.check_spread("sign_in_failures", "sign_in_identifier_failures", email, ip)
        try:
            yield
        except errors.InvalidCredentialsError:
            self.fail("sign_in_failures_ip", ip)
            self.count_spread("sign_in_failures", "sign_in_identifier_failures", email, ip)
            raise

    def signed_in_by_recovery(self, email: str, ip: str | None) -> None:
        """An emailed code proved who this is: guesses made before (from that address, and
        the ceiling others filled) must not keep the owner out of the recovered account."""
        self.reset_spread("sign_in_failures", "sign_in_identifier_failures", email, ip)

    def _own(self, rule: str, key: str | None) -> int:
        """How many events ``key`` has counted in the rule's first window (0 when the
        storage is down: fail open)."""
        if key is None or time.monotonic() < self._storage_down_until:
            return 0
        item = self.rules[rule].items[0]
        try:
            stats = self.limiter.get_window_stats(item, rule, self._key(rule, key))
        except Exception as exc:  # noqa: BLE001 - fail open on a storage outage
            self._storage_failed(exc)
            return 0
        return item.amount - stats.remaining

    def _refused(self, rule: str, item: RateLimitItem, key: str | None) -> errors.RateLimitedError:
        metrics.count("authsvc_rate_limit_rejections", rule)
        return errors.RateLimitedError(self._retry_after(rule, item, key))

    def _retry_after(self, rule: str, item: RateLimitItem, key: str | None) -> int:
        if key is None:
            return int(item.get_expiry())
        try:
            stats = self.limiter.get_window_stats(item, rule, self._key(rule, key))
            return max(1, int(stats.reset_time - time.time()) + 1)
        except Exception:  # noqa: BLE001
            return int(item.get_expiry())

    def _safe(self, call: Callable[[], object]) -> bool:
        if time.monotonic() < self._storage_down_until:
            return True  # known to be down: do not make every request wait on it
        try:
            return bool(call())
        except Exception as exc:  # noqa: BLE001 - fail open on a storage outage
            self._storage_failed(exc)
            return True

    def _storage_failed(self, exc: Exception) -> None:
        self.storage_errors += 1
        self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
        log.warning(
            "rate-limit storage unavailable (%s); not limiting for %.0f s",
            type(exc).__name__,
            STORAGE_RETRY_SECONDS,
        )
