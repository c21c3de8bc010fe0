from __future__ import annotations

from pydantic import BaseModel, Field

from authsvc.schemas import Code, RequestModel


class TotpSetup(BaseModel):
    secret_code: str = Field(description="The shared secret (base32) for an authenticator app.")
    otpauth_uri: str = Field(
        description="`otpauth://totp/…` URI: show it as a QR code or let the user copy it."
    )


class TotpVerify(RequestModel):
    code: Code
