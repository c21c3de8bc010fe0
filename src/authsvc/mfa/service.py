"""TOTP MFA: associate an authenticator app, verify it (which turns MFA on), turn it off."""

from __future__ import annotations

from urllib.parse import quote, urlencode

from authsvc import errors
from authsvc.cognito.gateway import CognitoGateway, from_attribute_list
from authsvc.cognito.tokens import AccessClaims
from authsvc.mfa.schemas import TotpSetup


def otpauth_uri(secret: str, account: str, issuer: str) -> str:
    label = quote(f"{issuer}:{account}")
    query = urlencode(
        {"secret": secret, "issuer": issuer, "algorithm": "SHA1", "digits": 6, "period": 30}
    )
    return f"otpauth://totp/{label}?{query}"


class MfaService:
    def __init__(self, gateway: CognitoGateway, issuer: str) -> None:
        self.gateway = gateway
        self.issuer = issuer

    def start_totp(self, claims: AccessClaims) -> TotpSetup:
        # Base32 is case-insensitive, but some authenticator apps only take upper case.
        secret = self.gateway.associate_software_token(claims.token).upper()
        user = self.gateway.get_user(claims.token)
        email = from_attribute_list(user.get("UserAttributes", [])).get("email") or claims.username
        return TotpSetup(secret_code=secret, otpauth_uri=otpauth_uri(secret, email, self.issuer))

    def verify_totp(self, claims: AccessClaims, code: str) -> None:
        status = self.gateway.verify_software_token(claims.token, code)
        if status != "SUCCESS":
            raise errors.InvalidCodeError()
        self.gateway.set_totp_preference(claims.token, enabled=True)

    def disable_totp(self, claims: AccessClaims) -> None:
        self.gateway.set_totp_preference(claims.token, enabled=False)
