from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from authsvc.federation.providers import ProviderKind
from authsvc.schemas import RequestModel

Uri = Annotated[str, StringConstraints(min_length=1, max_length=2048)]
Opaque = Annotated[str, StringConstraints(min_length=1, max_length=8192)]


class ProviderInfo(BaseModel):
    name: str = Field(description="Cognito's provider name; the `{provider}` path segment.")
    kind: ProviderKind


class ProviderList(BaseModel):
    items: list[ProviderInfo]


class StartRequest(RequestModel):
    redirect_uri: Uri = Field(
        description="Where the browser returns with `#handoff_code=…`; must be listed in"
        " AUTHSVC_FEDERATION_REDIRECT_URIS."
    )


class StartResponse(BaseModel):
    authorization_url: str = Field(description="Send the browser here (Cognito's hosted UI).")


class ExchangeRequest(RequestModel):
    handoff_code: Annotated[str, StringConstraints(min_length=1, max_length=512)]


class NativeTokenRequest(RequestModel):
    code: Opaque
    code_verifier: Annotated[
        str, StringConstraints(min_length=43, max_length=128, pattern=r"^[A-Za-z0-9\-._~]+$")
    ]
    redirect_uri: Uri


class AwsCredentialsRequest(RequestModel):
    id_token: Opaque = Field(description="The user's Cognito ID token (the identity's login).")


class AwsCredentialsResponse(BaseModel):
    identity_id: str
    access_key_id: str
    secret_access_key: str
    session_token: str
    expiration: datetime
