"""The ONE table that turns Cognito error codes into domain errors.

Rows are keyed by ``(gateway operation, Cognito code)``; an operation of ``None`` is the
default for that code. Anything not in the table becomes ``upstream_error`` with the AWS
text logged, never returned; any HTTP 5xx answer is ``upstream_unavailable`` (503, Retry-After),
whatever its code.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable

from botocore.exceptions import ClientError

from authsvc import errors

log = logging.getLogger("authsvc.cognito")


class UnknownUserError(errors.NotFoundError):
    """Cognito says the user does not exist. Public flows must hide this."""

    default_detail = "The user does not exist."


class AccountExistsError(errors.ConflictError):
    """Sign-up for an address that already has an account. Public flows must hide this."""

    default_detail = "An account with this email already exists."


class PasswordResetRequiredError(errors.AuthSvcError):
    status, code, title = 403, "password_reset_required", "Password reset required"
    default_detail = "The password must be reset: use the forgot-password flow."


class UserAlreadyConfirmedError(errors.ConflictError):
    """Confirming an already confirmed user. Cognito itself says so to anyone who calls
    ConfirmSignUp with the (public) app client id, so hiding it here would protect nothing
    and only leave the user guessing (issue 13)."""

    default_detail = "This sign-up is already confirmed: sign in."


class PerUserLimitError(errors.UpstreamUnavailableError):
    """A limit Cognito keeps per user (LimitExceeded, code delivery): a fault for the caller,
    but flows that must not reveal whether an account exists answer as usual instead."""


def _per_user() -> errors.AuthSvcError:
    return PerUserLimitError("The identity provider is busy; retry later.")


def _limited() -> errors.AuthSvcError:
    return errors.RateLimitedError(60, "Too many attempts for this account; retry later.")


def _unavailable() -> errors.AuthSvcError:
    return errors.UpstreamUnavailableError("The identity provider is busy; retry later.")


def _attribute_value() -> errors.AuthSvcError:
    message = "The user pool does not accept one of these attribute values."
    return errors.InvalidAttributeValueError(message, issues=[(["body", "attributes"], message)])


Factory = Callable[[], errors.AuthSvcError]

TABLE: dict[tuple[str | None, str], Factory] = {
    # sign-in: unknown user, wrong password and disabled user read the same
    ("sign_in", "NotAuthorizedException"): errors.InvalidCredentialsError,
    ("sign_in", "UserNotFoundException"): errors.InvalidCredentialsError,
    ("sign_in", "PasswordResetRequiredException"): PasswordResetRequiredError,
    ("sign_in", "UserNotConfirmedException"): errors.UserNotConfirmedError,
    # Some emulators (and Cognito for users in some states) answer a sign-in with this:
    # a distinct answer would say the account exists.
    ("sign_in", "InvalidPasswordException"): errors.InvalidCredentialsError,
    # challenge answers
    ("respond_to_challenge", "NotAuthorizedException"): errors.InvalidSessionError,
    ("respond_to_challenge", "UserNotFoundException"): errors.InvalidSessionError,
    ("respond_to_challenge", "ExpiredCodeException"): errors.InvalidSessionError,
    # refresh
    ("refresh", "NotAuthorizedException"): errors.InvalidTokenError,
    ("refresh", "UserNotFoundException"): errors.InvalidTokenError,
    # codes: an unknown user reads like a bad code
    ("confirm_sign_up", "UserNotFoundException"): errors.InvalidCodeError,
    ("confirm_sign_up", "NotAuthorizedException"): UserAlreadyConfirmedError,
    ("confirm_forgot_password", "UserNotFoundException"): errors.InvalidCodeError,
    ("confirm_forgot_password", "NotAuthorizedException"): errors.InvalidCodeError,
    # sign-up on a pool where only administrators create users (AllowAdminCreateUserOnly)
    ("sign_up", "NotAuthorizedException"): lambda: errors.ForbiddenError(
        "This user pool does not take sign-ups: accounts are created by an administrator"
        " or by invitation."
    ),
    # change password: wrong current password is not a sign-out
    ("change_password", "NotAuthorizedException"): errors.InvalidCurrentPasswordError,
    # a pagination token the pool refuses came from the client's cursor (moto: InvalidToken)
    ("list_users", "InvalidToken"): errors.InvalidCursorError,
    ("list_users", "InvalidParameterException"): lambda: errors.ValidationError(
        "The cursor or filter is not valid."
    ),
    # Calls that write attributes: the values were checked against the pool's schema as
    # described (pool.py), so what Cognito still refuses is a value rule of its own (a
    # DateTime's format, a phone number's) — never validation_error for a schema-valid body.
    **{
        (operation, "InvalidParameterException"): _attribute_value
        for operation in (
            "sign_up",
            "admin_create_user",
            "update_user_attributes",
            "admin_update_user_attributes",
        )
    },
    # defaults
    (None, "UserNotFoundException"): UnknownUserError,
    (None, "UsernameExistsException"): AccountExistsError,
    (None, "AliasExistsException"): AccountExistsError,
    (None, "NotAuthorizedException"): errors.InvalidTokenError,
    (None, "UserNotConfirmedException"): errors.UserNotConfirmedError,
    (None, "PasswordResetRequiredException"): PasswordResetRequiredError,
    (None, "CodeMismatchException"): errors.InvalidCodeError,
    (None, "ExpiredCodeException"): errors.ExpiredCodeError,
    (None, "EnableSoftwareTokenMFAException"): errors.InvalidCodeError,
    (None, "InvalidPasswordException"): errors.InvalidPasswordError,
    (None, "PasswordHistoryPolicyViolationException"): errors.InvalidPasswordError,
    (None, "InvalidParameterException"): errors.ValidationError,
    (None, "GroupExistsException"): errors.ConflictError,
    (None, "ResourceNotFoundException"): errors.NotFoundError,
    # Cognito throttling (per account or per user): a fault upstream, not our local limit.
    (None, "LimitExceededException"): _per_user,
    (None, "TooManyFailedAttemptsException"): _limited,
    (None, "CodeDeliveryFailureException"): _per_user,
    (None, "TooManyRequestsException"): _unavailable,
    (None, "InternalErrorException"): _unavailable,
    (None, "ServiceUnavailable"): _unavailable,
    (None, "ThrottlingException"): _unavailable,
    (None, "ForbiddenException"): errors.ForbiddenError,
}

# Codes that never reach a client as themselves: the deployment is misconfigured.
_MISCONFIGURED = {"ResourceNotFoundException"}


_JWT = re.compile(r"eyJ[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]*)*")


def redact(message: str, sent: Iterable[str] = ()) -> str:
    """AWS's text without what the call carried: its messages can echo a value back (moto
    quotes a challenge session), and a password, code, token or session never goes to a log."""
    for value in sorted({v for v in sent if len(v) >= 4}, key=len, reverse=True):
        message = message.replace(value, "[redacted]")
    return _JWT.sub("[redacted]", message)


def translate(operation: str, exc: ClientError, sent: Iterable[str] = ()) -> errors.AuthSvcError:
    """Map a botocore ``ClientError`` raised by ``operation`` to a domain error.

    ``sent``: the string values of the call's parameters, redacted from anything logged.
    """
    code = str(exc.response.get("Error", {}).get("Code", ""))
    message = redact(str(exc.response.get("Error", {}).get("Message", "")), sent)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if isinstance(status, int) and status >= 500:
        # Any 5xx is an outage, whatever its code (a code the table does not know included):
        # the client retries after Retry-After instead of reporting a bad gateway.
        log.warning("cognito %s failed with HTTP %s %s: %s", operation, status, code, message)
        return errors.UpstreamUnavailableError("The identity provider is unavailable; retry later.")
    if operation == "sign_up" and code == "NotAuthorizedException" and "secret" in message.lower():
        # A wrong or missing SECRET_HASH: the deployment's client secret, not the caller.
        log.error("cognito sign_up refused the app client's secret: %s", message)
        return errors.UpstreamError()
    factory = TABLE.get((operation, code)) or TABLE.get((None, code))
    if factory is None or (code in _MISCONFIGURED and operation in _POOL_LEVEL_OPERATIONS):
        log.error("cognito %s failed with unmapped %s: %s", operation, code, message)
        return errors.UpstreamError()
    err = factory()
    if isinstance(err, errors.InvalidPasswordError) and message:
        # Cognito's text names the rule that failed ("Password must have uppercase ...").
        err.detail = _password_message(message)
    if err.status >= 500:
        log.warning("cognito %s failed: %s", operation, code)
    return err


# What a value botocore refuses before sending means, per operation (as Cognito's own
# InvalidParameterException would): the same answer a wrong value gets where one exists.
_PARAM_ERRORS: dict[str, Factory] = {
    "sign_in": errors.InvalidCredentialsError,
    "respond_to_challenge": errors.InvalidSessionError,
    "refresh": errors.InvalidTokenError,
    "confirm_sign_up": errors.InvalidCodeError,
    "confirm_forgot_password": errors.InvalidCodeError,
}


def translate_param_error(operation: str, exc: Exception) -> errors.AuthSvcError:
    """botocore's ParamValidationError: the input broke the API's constraints, not Cognito."""
    factory = _PARAM_ERRORS.get(operation)
    if factory is not None:
        return factory()
    # The message names the parameter and the rule, never the value.
    report = str(exc).splitlines()[-1] if str(exc) else ""
    log.info("cognito %s refused a parameter: %s", operation, report.split(",")[0])
    return errors.ValidationError("A value is not accepted by the identity provider.")


# A missing pool or client is a deployment fault, not a client's 404.
_POOL_LEVEL_OPERATIONS = {
    "sign_up",
    "confirm_sign_up",
    "resend_confirmation_code",
    "sign_in",
    "respond_to_challenge",
    "refresh",
    "forgot_password",
    "confirm_forgot_password",
    "describe_user_pool",
    "describe_user_pool_client",
    "readiness_probe",
    # An unknown user is UserNotFoundException here: ResourceNotFound means the pool.
    "admin_get_user",
    "admin_user_global_sign_out",
}


def _password_message(message: str) -> str:
    text = message.split(":", 1)[1].strip() if ":" in message else message
    return (
        text
        if text.lower().startswith("password")
        else "The password does not meet the password policy."
    )


# -- metric outcome classes (issue 11.4) --------------------------------------------------

# Codes a public flow answers exactly like a success (so that it does not tell which emails
# have accounts): the metrics count them as `ok`, or `/metrics` would tell instead.
_HIDDEN: dict[str, frozenset[str]] = {
    "sign_up": frozenset({"UsernameExistsException", "AliasExistsException"}),
    "resend_confirmation_code": frozenset(
        {
            "UserNotFoundException",
            "InvalidParameterException",
            "NotAuthorizedException",
            "LimitExceededException",
            "CodeDeliveryFailureException",
        }
    ),
    "forgot_password": frozenset(
        {
            "UserNotFoundException",
            "UserNotConfirmedException",
            "NotAuthorizedException",
            "InvalidParameterException",
            "LimitExceededException",
            "CodeDeliveryFailureException",
        }
    ),
}
_THROTTLED = frozenset(
    {
        "TooManyRequestsException",
        "ThrottlingException",
        "LimitExceededException",
        "TooManyFailedAttemptsException",
        "CodeDeliveryFailureException",
    }
)
_UNAVAILABLE = frozenset({"InternalErrorException", "ServiceUnavailable", "unreachable"})


def outcome_class(operation: str, code: str) -> str:
    """The metric label for one Cognito call: ``ok``, ``client_error``, ``throttled`` or
    ``unavailable`` — never the Cognito code, which would name what the API hides."""
    if code == "ok" or code in _HIDDEN.get(operation, ()):
        return "ok"
    if code in _THROTTLED:
        return "throttled"
    if code in _UNAVAILABLE:
        return "unavailable"
    return "client_error"
