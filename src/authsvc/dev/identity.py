"""Cognito identity-pool rules moto's cognito-identity does not apply, for `authsvc dev` and
the tests (REFERENCE: check what the emulator implements before relying on it).

moto's GetId answers an unknown pool with a 500 and accepts any ``Logins`` map; Cognito
answers ResourceNotFoundException for the former and NotAuthorizedException when a login's
provider is not one of the pool's CognitoIdentityProviders, or the token was issued to an
app client the pool does not list. This wrapper refuses those the way Cognito does, then
lets moto answer. (Cognito also validates the token's signature and expiry; authsvc checks
both itself before calling, in production as in dev.)
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from authsvc.cognito.tokens import unverified_claims


def _refuse(code: str, message: str, operation: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {
                "RequestId": "",
                "HostId": "",
                "HTTPStatusCode": 400,
                "HTTPHeaders": {},
                "RetryAttempts": 0,
            },
        },
        operation,
    )


class CheckedIdentityClient:
    def __init__(self, client: Any) -> None:
        self.client = client

    def _check(self, pool_id: str, logins: dict[str, str], operation: str) -> None:
        try:
            pool = self.client.describe_identity_pool(IdentityPoolId=pool_id)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise
            raise _refuse(
                "ResourceNotFoundException", "IdentityPool not found", operation
            ) from None
        allowed = {
            (p["ProviderName"], p["ClientId"]) for p in pool.get("CognitoIdentityProviders", [])
        }
        for provider, token in logins.items():
            try:
                audience = str(unverified_claims(token).get("aud"))
            except (ValueError, IndexError):
                raise _refuse("NotAuthorizedException", "Invalid login token.", operation) from None
            if (provider, audience) not in allowed:
                raise _refuse(
                    "NotAuthorizedException",
                    "Token is not from a supported provider of this identity pool.",
                    operation,
                )

    def get_id(self, *, IdentityPoolId: str, Logins: dict[str, str], **kwargs: Any) -> Any:  # noqa: N803
        self._check(IdentityPoolId, Logins, "GetId")
        return self.client.get_id(IdentityPoolId=IdentityPoolId, Logins=Logins, **kwargs)

    def get_credentials_for_identity(self, **kwargs: Any) -> Any:
        return self.client.get_credentials_for_identity(**kwargs)
