"""The gateway's plumbing: every Cognito call goes through ``GatewayCalls._call`` (budget,
metrics, logs, errors translated through ``cognito/errors.py``); non-idempotent ones through
``_checked``, which looks before sending one again."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from authsvc import errors, metrics
from authsvc.cognito.attributes import SecretHasher
from authsvc.cognito.budget import BudgetExhaustedError, CognitoBudget
from authsvc.cognito.clients import make_client
from authsvc.cognito.errors import (
    PerUserLimitError,
    outcome_class,
    translate,
    translate_param_error,
)
from authsvc.config import Settings

log = logging.getLogger("authsvc.cognito")


# Calls that must not be repeated blindly: a retry after a timeout could repeat an action
# that took effect (and then fail on its own consequence). These are sent once; on a fault
# the gateway checks whether they took effect before sending them again.
NON_IDEMPOTENT = frozenset(
    {
        "sign_up",
        "confirm_sign_up",
        "admin_create_user",
        "confirm_forgot_password",
        "change_password",
        "admin_delete_user",
    }
)


def backoff(attempt: int, base: float = 0.1, cap: float = 2.0) -> float:
    """Full jitter: a random wait up to base·2^attempt, at most ``cap`` seconds."""
    return random.uniform(0, min(cap, base * 2**attempt))  # noqa: S311 - not for secrets


# Parameters that identify the deployment or the flow, never a user's secret.
_PLAIN_PARAMETERS = frozenset(
    {"UserPoolId", "ClientId", "AuthFlow", "ChallengeName", "MessageAction", "Name"}
)


def _sent_values(value: Any, key: str | None = None) -> list[str]:
    """Every string a call carries (passwords, codes, tokens, sessions, names), so that an
    error message echoing one of them is redacted before it is logged."""
    if key in _PLAIN_PARAMETERS:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return [s for k, v in value.items() for s in _sent_values(v, str(k))]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _sent_values(item)]
    return []


class GatewayCalls:
    def __init__(
        self, settings: Settings, client: Any | None = None, budget: CognitoBudget | None = None
    ) -> None:
        self.settings = settings
        self.budget = budget
        self.pool_id = settings.cognito_user_pool_id
        self.client_id = settings.cognito_client_id
        self.client_secret = settings.client_secret
        self._hasher: SecretHasher | None = None
        self.client = client if client is not None else make_client(settings)
        self.once_client = client if client is not None else make_client(settings, max_attempts=1)

    # -- plumbing ---------------------------------------------------------------------

    def _call(self, operation: str, method: str, **kwargs: Any) -> dict[str, Any]:
        if self.budget is not None:
            self.budget.take(operation)
        started = time.perf_counter()
        client = self.once_client if operation in NON_IDEMPOTENT else self.client
        try:
            response: dict[str, Any] = getattr(client, method)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "?")
            metrics.observe_cognito(
                operation, outcome_class(operation, str(code)), time.perf_counter() - started
            )
            log.info(
                "cognito call",
                extra={
                    "operation": operation,
                    "outcome": code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                },
            )
            raise translate(operation, exc, sent=_sent_values(kwargs)) from None
        except ParamValidationError as exc:
            # botocore refused a value before sending it (e.g. shorter than the API's
            # minimum): the request's input, not Cognito, is at fault. Never the value itself.
            metrics.observe_cognito(operation, "client_error", time.perf_counter() - started)
            log.info(
                "cognito call",
                extra={"operation": operation, "outcome": "ParamValidationError"},
            )
            raise translate_param_error(operation, exc) from None
        except BotoCoreError as exc:
            metrics.observe_cognito(operation, "unavailable", time.perf_counter() - started)
            log.warning("cognito %s unreachable: %s", operation, type(exc).__name__)
            raise errors.UpstreamUnavailableError(
                "The identity provider is unreachable; retry later."
            ) from None
        elapsed = time.perf_counter() - started
        metrics.observe_cognito(operation, "ok", elapsed)
        log.info(
            "cognito call",
            extra={
                "operation": operation,
                "outcome": "ok",
                "duration_ms": round(elapsed * 1000, 2),
            },
        )
        return response

    def _checked(
        self,
        operation: str,
        method: str,
        took_effect: Callable[[], dict[str, Any] | None],
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Send a non-idempotent call; after a fault, look before sending it again."""
        attempts = self.settings.cognito_max_attempts
        for attempt in range(attempts):
            try:
                return self._call(operation, method, **kwargs)
            except (BudgetExhaustedError, PerUserLimitError):
                raise  # a definite refusal, not an unclear outcome: nothing to look for
            except errors.UpstreamUnavailableError:
                if attempt + 1 >= attempts:
                    raise
                try:
                    outcome = took_effect()
                except errors.AuthSvcError:
                    outcome = None
                if outcome is not None:
                    log.info(
                        "cognito call", extra={"operation": operation, "outcome": "ok-after-check"}
                    )
                    return outcome
                time.sleep(backoff(attempt))
        raise AssertionError("unreachable")

    def _user_status(self, email: str) -> dict[str, Any] | None:
        try:
            return self._call(
                "admin_get_user", "admin_get_user", UserPoolId=self.pool_id, Username=email
            )
        except errors.NotFoundError:
            return None

    def secret_hash(self, username: str) -> str:
        """SECRET_HASH for ``username`` with this gateway's app client (which must have a
        secret); the keyed HMAC is rebuilt only when the client or its secret changes."""
        assert self.client_secret is not None
        hasher = self._hasher
        if (
            hasher is None
            or hasher.client_id != self.client_id
            or hasher.client_secret != self.client_secret
        ):
            hasher = self._hasher = SecretHasher(self.client_id, self.client_secret)
        return hasher(username)

    def _with_secret(
        self, params: dict[str, str], username: str, key: str = "SECRET_HASH"
    ) -> dict[str, str]:
        if self.client_secret:
            params[key] = self.secret_hash(username)
        return params

    def _secret_kwarg(self, username: str) -> dict[str, str]:
        if self.client_secret:
            return {"SecretHash": self.secret_hash(username)}
        return {}
