"""The outbound budget: stay under the account's Cognito quotas instead of being throttled.

Cognito's request quotas are per account and Region, per *category* of operation
(REFERENCE.md: UserAuthentication 120 RPS, UserCreation 50, UserAccountRecovery 30,
UserRead 120, UserUpdate 25, UserList 30). Each call takes one unit from its category's
per-second budget (in Redis when configured, so every instance shares it); with none left
it is not sent, and the caller gets 503 ``upstream_unavailable`` with ``Retry-After: 1``.
If the budget's storage is down, calls go through (Cognito still enforces its quotas).
"""

from __future__ import annotations

import logging
import time

from limits import RateLimitItemPerSecond, storage, strategies

from authsvc import errors
from authsvc.security.ratelimit import REDIS_TIMEOUTS, STORAGE_RETRY_SECONDS

log = logging.getLogger("authsvc.cognito")

# gateway operation -> quota category (AWS "Quotas in Amazon Cognito", operation categories)
CATEGORY = {
    "sign_in": "UserAuthentication",
    "respond_to_challenge": "UserAuthentication",
    "refresh": "UserAuthentication",
    "global_sign_out": "UserAuthentication",
    "sign_up": "UserCreation",
    "admin_create_user": "UserCreation",
    "confirm_sign_up": "UserCreation",
    "resend_confirmation_code": "UserAccountRecovery",
    "forgot_password": "UserAccountRecovery",
    "confirm_forgot_password": "UserAccountRecovery",
    "get_user": "UserRead",
    "admin_get_user": "UserRead",
    "admin_list_groups_for_user": "UserRead",
    "get_group": "UserRead",
    "describe_user_pool": "UserRead",
    "describe_user_pool_client": "UserRead",
    "list_users": "UserList",
    "update_user_attributes": "UserUpdate",
    "admin_update_user_attributes": "UserUpdate",
    "change_password": "UserUpdate",
    "admin_set_user_password": "UserUpdate",
    "admin_reset_user_password": "UserAccountRecovery",
    "admin_add_user_to_group": "UserUpdate",
    "admin_remove_user_from_group": "UserUpdate",
    "admin_disable_user": "UserUpdate",
    "admin_enable_user": "UserUpdate",
    "admin_delete_user": "UserUpdate",
    "admin_user_global_sign_out": "UserUpdate",
    "admin_set_user_mfa_preference": "UserUpdate",
    "set_user_mfa_preference": "UserUpdate",
    "associate_software_token": "UserUpdate",
    "verify_software_token": "UserUpdate",
}


class BudgetExhaustedError(errors.UpstreamUnavailableError):
    """Not sent: this second's budget for the operation's category is spent."""


class CognitoBudget:
    def __init__(self, per_second: dict[str, int], redis_url: str | None = None) -> None:
        uri = redis_url or "memory://"
        options: dict[str, float | str] = (
            {"key_prefix": "authsvc-budget", **REDIS_TIMEOUTS} if uri.startswith("redis") else {}
        )
        self.storage = storage.storage_from_string(uri, **options)
        self._storage_down_until = 0.0
        self.limiter = strategies.FixedWindowRateLimiter(self.storage)
        self.items = {
            category: RateLimitItemPerSecond(amount)
            for category, amount in per_second.items()
            if amount > 0
        }
        self.refused = 0

    def take(self, operation: str) -> None:
        category = CATEGORY.get(operation)
        item = self.items.get(category) if category else None
        if item is None or category is None:
            return
        if time.monotonic() < self._storage_down_until:
            return  # known to be down: no request waits on it
        try:
            allowed = self.limiter.hit(item, category)
        except Exception as exc:  # noqa: BLE001 - fail open: Cognito still enforces quotas
            self._storage_down_until = time.monotonic() + STORAGE_RETRY_SECONDS
            log.warning(
                "cognito budget storage unavailable (%s); no budget for %.0f s",
                type(exc).__name__,
                STORAGE_RETRY_SECONDS,
            )
            return
        if not allowed:
            self.refused += 1
            raise BudgetExhaustedError(
                "The identity provider's request budget is spent for this second; retry.",
                retry_after=1,
            )
