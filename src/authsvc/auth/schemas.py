from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StringConstraints

from authsvc.cognito.tokens import AccessClaims
from authsvc.schemas import (
    AttributeName,
    AttributeValue,
    Code,
    Email,
    Name,
    Password,
    RequestModel,
)

Opaque = Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class SignUpRequest(RequestModel):
    email: Email
    password: Password
    given_name: Name | None = None
    family_name: Name
    attributes: dict[AttributeName, AttributeValue] = Field(
        default_factory=dict, description="Custom attributes, without the `custom:` prefix."
    )


class ConfirmSignUpRequest(RequestModel):
    email: Email
    code: Code


class EmailRequest(RequestModel):
    email: Email


class SignInRequest(RequestModel):
    email: Email
    password: Password


ChallengeName = Literal["NEW_PASSWORD_REQUIRED", "SOFTWARE_TOKEN_MFA", "SMS_MFA"]


class _ChallengeAnswer(RequestModel):
    session: Opaque = Field(
        description="The `session` of the challenge being answered (sealed by authsvc; it"
        " names the user)."
    )
    email: Email | None = Field(
        default=None, description="Optional; when sent, must be the email the sign-in used."
    )


class NewPasswordAnswer(_ChallengeAnswer):
    challenge: Literal["NEW_PASSWORD_REQUIRED"]
    new_password: Password


class MfaCodeAnswer(_ChallengeAnswer):
    challenge: Literal["SOFTWARE_TOKEN_MFA", "SMS_MFA"]
    code: Code


# A union on `challenge`: each challenge requires its own answer field, so a body valid
# against the OpenAPI schema is never refused for a missing one.
ChallengeRequest = Annotated[NewPasswordAnswer | MfaCodeAnswer, Field(discriminator="challenge")]


class RefreshRequest(RequestModel):
    refresh_token: Opaque


class ResetPasswordRequest(RequestModel):
    email: Email
    code: Code
    new_password: Password


class Delivery(BaseModel):
    medium: Literal["EMAIL"] = "EMAIL"
    destination: str = Field(examples=["b***@e***.com"])


class DeliveryResponse(BaseModel):
    delivery: Delivery


class PasswordResetRequired(BaseModel):
    """Confirmation of an address registered more than once: the account is confirmed, and
    the password must now be set with the reset code just emailed to it."""

    next: Literal["reset_password"] = Field(
        default="reset_password",
        description="Set a new password at `/v1/auth/password/reset` with the emailed code.",
    )
    delivery: Delivery


class TokenResult(BaseModel):
    kind: Literal["tokens"] = "tokens"
    access_token: str
    id_token: str
    refresh_token: str | None = Field(
        default=None, description="Absent when the refresh token travels in a cookie."
    )
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int


class ChallengeResult(BaseModel):
    kind: Literal["challenge"] = "challenge"
    challenge: str
    session: str
    parameters: dict[str, Any] = Field(default_factory=dict)


SignInResult = Annotated[TokenResult | ChallengeResult, Field(discriminator="kind")]


class SessionInfo(BaseModel):
    sub: str
    username: str
    groups: list[str]
    scopes: list[str]
    client_id: str
    issued_at: datetime
    expires_at: datetime


def session_json(claims: AccessClaims) -> bytes:
    """The body of GET /v1/auth/session, serialized in one step by pydantic-core (shared by
    the route and the middleware's fast path, so both answer byte for byte alike)."""
    return (
        SessionInfo(
            sub=claims.sub,
            username=claims.username,
            groups=list(claims.groups),
            scopes=list(claims.scopes),
            client_id=claims.client_id,
            issued_at=claims.issued_at_dt,
            expires_at=claims.expires_at_dt,
        )
        .model_dump_json()
        .encode()
    )
