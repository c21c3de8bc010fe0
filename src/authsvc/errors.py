"""Domain errors. Each kind carries its HTTP status and stable ``code`` (DESIGN §2).

Nothing below the endpoint layer raises ``HTTPException``: services and the Cognito
gateway raise these, and ``problems.py`` renders every one of them the same way.
"""

from __future__ import annotations

from typing import Any, ClassVar


class AuthSvcError(Exception):
    status: ClassVar[int] = 500
    # The problem carries `errors[]` (loc, msg, type per field): validation_error and the
    # field problems below.
    carries_errors: ClassVar[bool] = False
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal server error"
    default_detail: ClassVar[str] = "An unexpected error occurred."

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        self.detail = detail or self.default_detail
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(self.detail)


class ValidationError(AuthSvcError):
    status, code, title = 422, "validation_error", "Validation failed"
    carries_errors = True
    default_detail = "The request is not valid."

    def __init__(
        self,
        detail: str | None = None,
        *,
        loc: list[str | int] | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(detail, headers=headers, extra=extra)
        # Every validation_error carries errors[], like the schema's own (issue 13).
        issue = {"loc": list(loc or ["body"]), "msg": self.detail, "type": "value_error"}
        self.extra.setdefault("errors", [issue])


FieldIssue = tuple[list[str | int], str]  # (loc, message), as in validation_error's errors[]


class FieldProblemError(AuthSvcError):
    """A schema-valid request the pool refuses for one or more named fields (an attribute it
    does not define, a value it does not take, a group it does not have). No shared schema
    can state these rules, so they are not validation_error; like validation_error, the
    problem's ``errors[]`` names each field (``loc``), with what is wrong (``msg``).
    """

    status = 400
    carries_errors: ClassVar[bool] = True

    def __init__(
        self, detail: str | None = None, *, issues: list[FieldIssue] | None = None
    ) -> None:
        super().__init__(detail)
        found = issues or [(["body"], self.detail)]
        self.extra["errors"] = [
            {"loc": list(loc), "msg": msg, "type": self.code} for loc, msg in found
        ]


class UnknownAttributeError(FieldProblemError):
    code, title = "unknown_attribute", "Unknown attribute"
    default_detail = "The user pool has no such attribute, or this app may not write it."


class AttributeRequiredError(FieldProblemError):
    code, title = "attribute_required", "Attribute required"
    default_detail = "The user pool requires this attribute."


class InvalidAttributeValueError(FieldProblemError):
    code, title = "invalid_attribute_value", "Invalid attribute value"
    default_detail = "The user pool does not accept this attribute value."


class UnknownGroupError(FieldProblemError):
    code, title = "unknown_group", "Unknown group"
    default_detail = "The user pool has no such group."


class InvalidPasswordError(AuthSvcError):
    status, code, title = 422, "invalid_password", "Password does not meet the policy"
    default_detail = "The password does not meet the password policy."


class InvalidCredentialsError(AuthSvcError):
    status, code, title = 401, "invalid_credentials", "Invalid credentials"
    default_detail = "The email or password is incorrect."


class NotAuthenticatedError(AuthSvcError):
    status, code, title = 401, "not_authenticated", "Not authenticated"
    default_detail = "A bearer access token is required."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class InvalidTokenError(AuthSvcError):
    status, code, title = 401, "invalid_token", "Invalid token"
    default_detail = "The token is invalid, expired or revoked."

    def __init__(self, detail: str | None = None) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


class ForbiddenError(AuthSvcError):
    status, code, title = 403, "forbidden", "Forbidden"
    default_detail = "You are not allowed to do this."


class ReauthenticationRequiredError(AuthSvcError):
    status, code, title = 403, "reauthentication_required", "Recent sign-in required"
    default_detail = "This change needs a recent sign-in: sign in again, or send current_password."


class UserNotConfirmedError(AuthSvcError):
    status, code, title = 403, "user_not_confirmed", "User not confirmed"
    default_detail = "Confirm the sign-up with the code that was sent before signing in."


class InvalidCodeError(AuthSvcError):
    status, code, title = 400, "invalid_code", "Invalid code"
    default_detail = "The code is incorrect."


class ExpiredCodeError(AuthSvcError):
    status, code, title = 400, "expired_code", "Expired code"
    default_detail = "The code has expired; request a new one."


class InvalidSessionError(AuthSvcError):
    status, code, title = 400, "invalid_session", "Invalid session"
    default_detail = "The challenge session is unknown or has expired; sign in again."


class InvalidCurrentPasswordError(AuthSvcError):
    status, code, title = 400, "invalid_current_password", "Invalid current password"
    default_detail = "The current password is incorrect."


class InvalidInvitationError(AuthSvcError):
    status, code, title = 400, "invalid_invitation", "Invalid invitation"
    default_detail = "The invitation is unknown, already used, revoked or expired."


class InvalidCursorError(AuthSvcError):
    """A well-formed cursor the server did not issue (or can no longer use): like an unknown
    token, no schema can tell it from a good one, so it is not a validation_error."""

    status, code, title = 400, "invalid_cursor", "Invalid cursor"
    default_detail = "The cursor is unknown or expired: start again from the first page."


class NotFoundError(AuthSvcError):
    status, code, title = 404, "not_found", "Not found"
    default_detail = "The resource does not exist."


class ConflictError(AuthSvcError):
    status, code, title = 409, "conflict", "Conflict"
    default_detail = "The request conflicts with the current state."


class RateLimitedError(AuthSvcError):
    status, code, title = 429, "rate_limited", "Too many requests"
    default_detail = "Too many requests; retry later."

    def __init__(self, retry_after: int, detail: str | None = None) -> None:
        wait = max(1, retry_after)
        # The detail says how long to wait, in words as well as in Retry-After.
        when = f"Retry in {wait} second{'s' if wait != 1 else ''}."
        base = (detail or "Too many requests.").rstrip()
        base = base.removesuffix(" retry later.").removesuffix("; retry later.").rstrip(";,.")
        super().__init__(f"{base}. {when}", headers={"Retry-After": str(wait)})


class UpstreamUnavailableError(AuthSvcError):
    status, code, title = 503, "upstream_unavailable", "Service temporarily unavailable"
    default_detail = "A dependency is unavailable; retry later."

    def __init__(self, detail: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class UpstreamError(AuthSvcError):
    status, code, title = 502, "upstream_error", "Upstream error"
    default_detail = "The identity provider answered unexpectedly."


class InternalError(AuthSvcError):
    pass


# What routes document, in groups (problems.responses(*AUTH, ...)).
# Routes that write user attributes (the pool decides which exist, are required, and what
# values they take).
ATTRIBUTES: tuple[type[AuthSvcError], ...] = (
    UnknownAttributeError,
    AttributeRequiredError,
    InvalidAttributeValueError,
)
AUTH: tuple[type[AuthSvcError], ...] = (NotAuthenticatedError, InvalidTokenError)
ADMIN: tuple[type[AuthSvcError], ...] = (*AUTH, ForbiddenError)
UPSTREAM: tuple[type[AuthSvcError], ...] = (UpstreamUnavailableError, UpstreamError)
# Cognito-backed self-service calls can also meet a limit (ours or Cognito's per-user one).
LIMITED_UPSTREAM: tuple[type[AuthSvcError], ...] = (*UPSTREAM, RateLimitedError)

ALL_ERRORS: tuple[type[AuthSvcError], ...] = (
    ValidationError,
    InvalidPasswordError,
    InvalidCredentialsError,
    NotAuthenticatedError,
    InvalidTokenError,
    ForbiddenError,
    ReauthenticationRequiredError,
    UserNotConfirmedError,
    InvalidCodeError,
    ExpiredCodeError,
    InvalidSessionError,
    InvalidCurrentPasswordError,
    InvalidInvitationError,
    InvalidCursorError,
    UnknownAttributeError,
    AttributeRequiredError,
    InvalidAttributeValueError,
    UnknownGroupError,
    NotFoundError,
    ConflictError,
    RateLimitedError,
    UpstreamUnavailableError,
    UpstreamError,
    InternalError,
)
