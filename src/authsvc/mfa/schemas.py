from __future__ import annotations

from pydantic import BaseModel, Field

from authsvc.schemas import Code, Password, RequestModel

_CURRENT_PASSWORD = (
    "Needed to turn TOTP off or replace it unless the access token comes from a sign-in"
    " within AUTHSVC_REAUTH_MAX_AGE seconds (403 `reauthentication_required` otherwise)."
)


class TotpSetup(BaseModel):
    secret_code: str = Field(description="The shared secret (base32) for an authenticator app.")
    otpauth_uri: str = Field(
        description="`otpauth://totp/…` URI: show it as a QR code or let the user copy it."
    )


class TotpVerify(RequestModel):
    code: Code
    current_password: Password | None = Field(default=None, description=_CURRENT_PASSWORD)


class Reauthentication(RequestModel):
    current_password: Password | None = Field(default=None, description=_CURRENT_PASSWORD)
