"""AWS credentials for a signed-in user from the Cognito identity pool (GetId, then
GetCredentialsForIdentity), after checking the ID token sent as the user's login."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from botocore.exceptions import BotoCoreError, ClientError

from authsvc import errors
from authsvc.cognito.gateway import make_client, new_client
from authsvc.cognito.tokens import AccessClaims, TokenVerifier
from authsvc.config import Settings
from authsvc.federation.errors import (
    FederationNotConfiguredError,
    IdentityPoolRefusedError,
)

log = logging.getLogger("authsvc.federation")

# Cognito-identity answers that mean "not for this user/pool", not "try later".
_POOL_REFUSALS = frozenset(
    {
        "NotAuthorizedException",
        "ResourceNotFoundException",
        "InvalidParameterException",
        "InvalidIdentityPoolConfigurationException",
        "ExternalServiceException",
    }
)
_POOL_UNAVAILABLE = frozenset(
    {"TooManyRequestsException", "InternalErrorException", "LimitExceededException"}
)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    identity_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime


class IdentityCredentials:
    """The identity-pool part of ``FederationService`` (its state is set there)."""

    settings: Settings
    verifier: TokenVerifier
    _identity_client: Any | None

    def aws_credentials(self, claims: AccessClaims, id_token: str) -> AwsCredentials:
        pool_id = self.settings.identity_pool_id
        if not pool_id:
            raise FederationNotConfiguredError("No identity pool is configured.")
        self._verify_id_token(id_token, claims.sub)
        # The login key is the user pool's issuer without the scheme (Cognito's rule).
        logins = {self.settings.issuer.removeprefix("https://"): id_token}
        client = self.identity_client()
        try:
            identity_id = client.get_id(IdentityPoolId=pool_id, Logins=logins)["IdentityId"]
            answer = client.get_credentials_for_identity(IdentityId=identity_id, Logins=logins)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in _POOL_REFUSALS:
                log.info("identity pool refused credentials: %s", code)
                raise IdentityPoolRefusedError() from None
            if (
                code in _POOL_UNAVAILABLE
                or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500
            ):
                raise errors.UpstreamUnavailableError() from None
            log.warning("cognito-identity answered %s: %s", code, exc)
            raise errors.UpstreamError() from None
        except BotoCoreError as exc:
            log.warning("cognito-identity unreachable: %s", type(exc).__name__)
            raise errors.UpstreamUnavailableError() from None
        creds = answer["Credentials"]
        return AwsCredentials(
            identity_id=identity_id,
            access_key_id=creds["AccessKeyId"],
            secret_access_key=creds["SecretKey"],
            session_token=creds["SessionToken"],
            expiration=creds["Expiration"],
        )

    def identity_client(self) -> Any:
        if self._identity_client is None:
            base = make_client(self.settings)  # same region, endpoint, timeouts and retries
            kwargs: dict[str, Any] = {"config": base.meta.config}
            if self.settings.cognito_endpoint_url:
                kwargs["endpoint_url"] = self.settings.cognito_endpoint_url
            if self.settings.dev_mode or self.settings.cognito_endpoint_url:
                # GetId and GetCredentialsForIdentity are unsigned calls at AWS; an emulator
                # still wants some credentials to parse the request.
                kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
            client = new_client("cognito-identity", **kwargs)
            if self.settings.dev_mode:
                from authsvc.dev.identity import CheckedIdentityClient

                client = CheckedIdentityClient(client)  # Cognito's refusals moto lacks
            self._identity_client = client
        return self._identity_client

    def _verify_id_token(self, id_token: str, sub: str) -> None:
        """The ID token goes to AWS as the user's login: check it is this user's, for this
        client, from this pool, and alive (moto's cognito-identity checks none of it)."""
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError:
            raise errors.InvalidTokenError("The ID token is malformed.") from None
        if header.get("alg") != "RS256" or not isinstance(header.get("kid"), str):
            raise errors.InvalidTokenError("The ID token is not an RS256 token of this pool.")
        key = self.verifier.jwks.get(header["kid"])
        try:
            payload = jwt.decode(
                id_token,
                key,
                algorithms=["RS256"],
                issuer=self.verifier.issuer,
                audience=self.settings.cognito_client_id,
                leeway=self.verifier.leeway,
                options={"require": ["exp", "iat", "iss", "sub", "aud", "token_use"]},
            )
        except jwt.ExpiredSignatureError:
            raise errors.InvalidTokenError("The ID token has expired.") from None
        except jwt.PyJWTError:
            raise errors.InvalidTokenError("The ID token is not valid.") from None
        if payload.get("token_use") != "id":
            raise errors.InvalidTokenError("An ID token is required in id_token.")
        if payload.get("sub") != sub:
            raise errors.InvalidTokenError("The ID token belongs to another user.")
