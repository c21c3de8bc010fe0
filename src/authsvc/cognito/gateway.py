"""The Cognito gateway: one method per Cognito operation, domain errors only.

No FastAPI here. Every call goes through ``_call``, which sends SECRET_HASH where the app
client has a secret, lets botocore's ``standard`` retry mode absorb throttling, and turns
every failure into a domain error through the one table in ``cognito/errors.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError

from authsvc import errors, metrics
from authsvc.cognito.budget import BudgetExhaustedError, CognitoBudget
from authsvc.cognito.errors import (
    PerUserLimitError,
    outcome_class,
    translate,
    translate_param_error,
)
from authsvc.config import Settings

log = logging.getLogger("authsvc.cognito")

Attributes = Mapping[str, str]


def secret_hash(username: str, client_id: str, client_secret: str) -> str:
    digest = hmac.new(
        client_secret.encode(), (username + client_id).encode(), hashlib.sha256
    ).digest()
    return base64.b64encode(digest).decode()


class SecretHasher:
    """``secret_hash`` for one app client, keyed once: each call copies the keyed HMAC
    instead of hashing the secret into its inner and outer pads again (issue 12: sign-in)."""

    __slots__ = ("_keyed", "client_id", "client_secret")

    def __init__(self, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self._keyed = hmac.new(client_secret.encode(), digestmod=hashlib.sha256)

    def __call__(self, username: str) -> str:
        mac = self._keyed.copy()
        mac.update((username + self.client_id).encode())
        return base64.b64encode(mac.digest()).decode()


def to_attribute_list(attributes: Attributes) -> list[dict[str, str]]:
    return [{"Name": name, "Value": value} for name, value in attributes.items()]


def from_attribute_list(items: list[dict[str, str]]) -> dict[str, str]:
    return {item["Name"]: item.get("Value", "") for item in items}


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


def user_sub(user: Mapping[str, Any]) -> str:
    """The ``sub`` of a user as admin_get_user / admin_create_user / list_users return it."""
    attributes = from_attribute_list(user.get("UserAttributes") or user.get("Attributes") or [])
    return attributes.get("sub") or str(user["Username"])


def challenge_username(response: Mapping[str, Any], fallback: str) -> str:
    """Whom Cognito issued a challenge to: the actual username a challenge answer must name.

    Cognito names it ``USER_ID_FOR_SRP`` in every challenge's parameters (for a pool that
    signs in by email, the user's UUID, not the email). moto names it ``USERNAME`` on
    NEW_PASSWORD_REQUIRED and leaves the MFA challenges' parameters empty; there moto takes
    whichever name identifies the user, so the fallback (the name that started the flow)
    does. The strict test layer (tests/strict) shapes parameters as Cognito does.
    """
    parameters = response.get("ChallengeParameters") or {}
    for key in ("USER_ID_FOR_SRP", "USERNAME"):
        value = parameters.get(key)
        if isinstance(value, str) and value:
            return value
    return fallback


def make_client(settings: Settings, *, max_attempts: int | None = None) -> Any:
    # botocore's "max_attempts" counts retries after the first request (3 would send 4, and
    # 1 would resend a non-idempotent call once, blindly); "total_max_attempts" counts them all.
    attempts = max_attempts or settings.cognito_max_attempts
    config = Config(
        region_name=settings.cognito_region,
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=settings.cognito_connect_timeout,
        read_timeout=settings.cognito_read_timeout,
        max_pool_connections=50,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.cognito_endpoint_url:
        kwargs["endpoint_url"] = settings.cognito_endpoint_url
    if settings.dev_mode:
        # The embedded emulator takes any credentials; a laptop may have none.
        kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    return new_client("cognito-idp", **kwargs)


_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def new_client(service: str, **kwargs: Any) -> Any:
    """A boto3 client from one shared session: the service model is read from disk once,
    not once per client (that is most of a client's creation time). Clients themselves are
    thread-safe; creating them from one session is serialised here because sessions are not."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        return _session.client(service, **kwargs)


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


class CognitoGateway:
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

    # -- pool metadata ------------------------------------------------------------------

    def describe_user_pool(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "describe_user_pool", "describe_user_pool", UserPoolId=self.pool_id
        )["UserPool"]
        return result

    def readiness_probe(self) -> None:
        """DescribeUserPool for /readyz. Its own operation name keeps it out of the budget's
        categories (the user-facing budget is not spent on probes) and apart in /metrics;
        /readyz sends at most one per instance per cache period (health/endpoints.py)."""
        self._call("readiness_probe", "describe_user_pool", UserPoolId=self.pool_id)

    def describe_user_pool_client(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "describe_user_pool_client",
            "describe_user_pool_client",
            UserPoolId=self.pool_id,
            ClientId=self.client_id,
        )["UserPoolClient"]
        return result

    # -- sign-up ------------------------------------------------------------------------

    def sign_up(self, email: str, password: str, attributes: Attributes) -> dict[str, Any]:
        def took_effect() -> dict[str, Any] | None:
            user = self._user_status(email)
            if user is None:
                return None
            return {
                "UserConfirmed": user.get("UserStatus") == "CONFIRMED",
                "UserSub": user_sub(user),
            }

        return self._checked(
            "sign_up",
            "sign_up",
            took_effect,
            ClientId=self.client_id,
            Username=email,
            Password=password,
            UserAttributes=to_attribute_list({"email": email, **attributes}),
            **self._secret_kwarg(email),
        )

    def confirm_sign_up(self, email: str, code: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            user = self._user_status(email)
            return {} if user is not None and user.get("UserStatus") == "CONFIRMED" else None

        self._checked(
            "confirm_sign_up",
            "confirm_sign_up",
            took_effect,
            ClientId=self.client_id,
            Username=email,
            ConfirmationCode=code,
            **self._secret_kwarg(email),
        )

    def resend_confirmation_code(self, email: str) -> dict[str, Any]:
        return self._call(
            "resend_confirmation_code",
            "resend_confirmation_code",
            ClientId=self.client_id,
            Username=email,
            **self._secret_kwarg(email),
        )

    # -- sign-in ------------------------------------------------------------------------

    def sign_in(self, email: str, password: str) -> dict[str, Any]:
        params = self._with_secret({"USERNAME": email, "PASSWORD": password}, email)
        return self._call(
            "sign_in",
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters=params,
        )

    def respond_to_challenge(
        self, challenge: str, session: str, username: str, answers: Attributes
    ) -> dict[str, Any]:
        """Answer as ``username``: the user's actual username (``challenge_username``), never
        an alias. Cognito refuses an alias here, and the SECRET_HASH is over that name."""
        responses = self._with_secret({"USERNAME": username, **answers}, username)
        return self._call(
            "respond_to_challenge",
            "respond_to_auth_challenge",
            ClientId=self.client_id,
            ChallengeName=challenge,
            Session=session,
            ChallengeResponses=responses,
        )

    def refresh(self, refresh_token: str, username: str | None = None) -> dict[str, Any]:
        params = {"REFRESH_TOKEN": refresh_token}
        if username is not None:
            self._with_secret(params, username)
        return self._call(
            "refresh",
            "initiate_auth",
            ClientId=self.client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters=params,
        )

    def global_sign_out(self, access_token: str) -> None:
        self._call("global_sign_out", "global_sign_out", AccessToken=access_token)

    def revoke_token(self, refresh_token: str) -> None:
        """RevokeToken: one refresh token (and the access tokens it issued), not the user's
        other sessions."""
        kwargs: dict[str, Any] = {"Token": refresh_token, "ClientId": self.client_id}
        if self.client_secret:
            kwargs["ClientSecret"] = self.client_secret
        self._call("revoke_token", "revoke_token", **kwargs)

    # -- password lifecycle -------------------------------------------------------------

    def forgot_password(self, email: str) -> dict[str, Any]:
        return self._call(
            "forgot_password",
            "forgot_password",
            ClientId=self.client_id,
            Username=email,
            **self._secret_kwarg(email),
        )

    def confirm_forgot_password(self, email: str, code: str, new_password: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            # The new password works (tokens, or a further challenge): the reset happened.
            try:
                self.sign_in(email, new_password)
            except (errors.InvalidCredentialsError, errors.UserNotConfirmedError):
                return None
            return {}

        self._checked(
            "confirm_forgot_password",
            "confirm_forgot_password",
            took_effect,
            ClientId=self.client_id,
            Username=email,
            ConfirmationCode=code,
            Password=new_password,
            **self._secret_kwarg(email),
        )

    def change_password(self, access_token: str, current: str, new: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            # The new password works: the change happened. (Unless it is the old one.)
            if new == current:
                return None
            user = self._call("get_user", "get_user", AccessToken=access_token)
            email = from_attribute_list(user.get("UserAttributes", [])).get("email")
            if not email:
                return None
            try:
                self.sign_in(email, new)
            except (errors.InvalidCredentialsError, errors.UserNotConfirmedError):
                return None
            return {}

        self._checked(
            "change_password",
            "change_password",
            took_effect,
            AccessToken=access_token,
            PreviousPassword=current,
            ProposedPassword=new,
        )

    # -- profile ------------------------------------------------------------------------

    def get_user(self, access_token: str) -> dict[str, Any]:
        return self._call("get_user", "get_user", AccessToken=access_token)

    def update_user_attributes(self, access_token: str, attributes: Attributes) -> None:
        self._call(
            "update_user_attributes",
            "update_user_attributes",
            AccessToken=access_token,
            UserAttributes=to_attribute_list(attributes),
        )

    # -- admin --------------------------------------------------------------------------

    def admin_get_user(self, username: str) -> dict[str, Any]:
        return self._call(
            "admin_get_user", "admin_get_user", UserPoolId=self.pool_id, Username=username
        )

    def admin_user_global_sign_out(self, username: str) -> None:
        self._call(
            "admin_user_global_sign_out",
            "admin_user_global_sign_out",
            UserPoolId=self.pool_id,
            Username=username,
        )

    def admin_create_user(
        self, email: str, temporary_password: str, attributes: Attributes
    ) -> dict[str, Any]:
        def took_effect() -> dict[str, Any] | None:
            # Only a user still waiting for its first password can be the one just created;
            # anything else is left to the caller's AccountExistsError handling.
            user = self._user_status(email)
            if user is None or user.get("UserStatus") != "FORCE_CHANGE_PASSWORD":
                return None
            return {"User": {**user, "Attributes": user.get("UserAttributes", [])}}

        result: dict[str, Any] = self._checked(
            "admin_create_user",
            "admin_create_user",
            took_effect,
            UserPoolId=self.pool_id,
            Username=email,
            TemporaryPassword=temporary_password,
            MessageAction="SUPPRESS",
            UserAttributes=to_attribute_list({"email": email, **attributes}),
        )["User"]
        return result

    def admin_set_user_password(self, username: str, password: str, *, permanent: bool) -> None:
        self._call(
            "admin_set_user_password",
            "admin_set_user_password",
            UserPoolId=self.pool_id,
            Username=username,
            Password=password,
            Permanent=permanent,
        )

    def admin_reset_user_password(self, username: str) -> None:
        """RESET_REQUIRED: the password no longer signs in; Cognito emails a reset code to
        the verified address, used with confirm_forgot_password. (Idempotent.)"""
        self._call(
            "admin_reset_user_password",
            "admin_reset_user_password",
            UserPoolId=self.pool_id,
            Username=username,
        )

    def admin_add_user_to_group(self, username: str, group: str) -> None:
        self._call(
            "admin_add_user_to_group",
            "admin_add_user_to_group",
            UserPoolId=self.pool_id,
            Username=username,
            GroupName=group,
        )

    def admin_delete_user(self, username: str) -> None:
        def took_effect() -> dict[str, Any] | None:
            return {} if self._user_status(username) is None else None

        self._checked(
            "admin_delete_user",
            "admin_delete_user",
            took_effect,
            UserPoolId=self.pool_id,
            Username=username,
        )

    def get_group(self, group: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "get_group", "get_group", UserPoolId=self.pool_id, GroupName=group
        )["Group"]
        return result

    def admin_update_user_attributes(self, username: str, attributes: Attributes) -> None:
        self._call(
            "admin_update_user_attributes",
            "admin_update_user_attributes",
            UserPoolId=self.pool_id,
            Username=username,
            UserAttributes=to_attribute_list(attributes),
        )

    def list_users(self, *, filter_: str | None, limit: int, token: str | None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"UserPoolId": self.pool_id, "Limit": limit}
        if filter_:
            kwargs["Filter"] = filter_
        if token:
            kwargs["PaginationToken"] = token
        return self._call("list_users", "list_users", **kwargs)

    def admin_list_groups_for_user(self, username: str) -> list[str]:
        groups: list[str] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"UserPoolId": self.pool_id, "Username": username, "Limit": 60}
            if token:
                kwargs["NextToken"] = token
            page = self._call("admin_list_groups_for_user", "admin_list_groups_for_user", **kwargs)
            groups.extend(g["GroupName"] for g in page.get("Groups", []))
            token = page.get("NextToken")
            if not token:
                return groups

    def admin_remove_user_from_group(self, username: str, group: str) -> None:
        self._call(
            "admin_remove_user_from_group",
            "admin_remove_user_from_group",
            UserPoolId=self.pool_id,
            Username=username,
            GroupName=group,
        )

    def admin_disable_user(self, username: str) -> None:
        self._call(
            "admin_disable_user", "admin_disable_user", UserPoolId=self.pool_id, Username=username
        )

    def admin_enable_user(self, username: str) -> None:
        self._call(
            "admin_enable_user", "admin_enable_user", UserPoolId=self.pool_id, Username=username
        )

    def admin_disable_totp(self, username: str) -> None:
        self._call(
            "admin_set_user_mfa_preference",
            "admin_set_user_mfa_preference",
            UserPoolId=self.pool_id,
            Username=username,
            SoftwareTokenMfaSettings={"Enabled": False, "PreferredMfa": False},
        )

    def associate_software_token(self, access_token: str) -> str:
        result = self._call(
            "associate_software_token", "associate_software_token", AccessToken=access_token
        )
        return str(result["SecretCode"])

    def verify_software_token(self, access_token: str, code: str) -> str:
        result = self._call(
            "verify_software_token",
            "verify_software_token",
            AccessToken=access_token,
            UserCode=code,
            FriendlyDeviceName="authsvc",
        )
        return str(result.get("Status", ""))

    def set_totp_preference(self, access_token: str, *, enabled: bool) -> None:
        self._call(
            "set_user_mfa_preference",
            "set_user_mfa_preference",
            AccessToken=access_token,
            SoftwareTokenMfaSettings={"Enabled": enabled, "PreferredMfa": enabled},
        )
