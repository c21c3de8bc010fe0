"""Non-idempotent calls: a definite refusal is never followed by an outcome check."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from authsvc.cognito.errors import PerUserLimitError
from authsvc.cognito.gateway import CognitoGateway
from authsvc.config import Settings


class FakeClient:
    """Records calls; change_password is refused by Cognito's per-user limit."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def change_password(self, **_: Any) -> dict[str, Any]:
        self.calls.append("change_password")
        raise ClientError(
            {"Error": {"Code": "LimitExceededException", "Message": "Attempt limit exceeded"}},
            "ChangePassword",
        )

    def get_user(self, **_: Any) -> dict[str, Any]:
        self.calls.append("get_user")
        return {"Username": "u", "UserAttributes": [{"Name": "email", "Value": "v@example.com"}]}

    def initiate_auth(self, **_: Any) -> dict[str, Any]:
        self.calls.append("initiate_auth")
        return {"AuthenticationResult": {"AccessToken": "x", "IdToken": "y", "ExpiresIn": 1}}


def test_a_per_user_refusal_is_not_followed_by_a_sign_in_with_the_new_password():
    """Otherwise a stolen access token could test password guesses: 204 when the guessed
    'new' password is the real one, 503 when not."""
    settings = Settings(
        cognito_user_pool_id="us-east-1_test", cognito_client_id="client", dev_mode=True
    )
    client = FakeClient()
    gateway = CognitoGateway(settings, client=client)
    with pytest.raises(PerUserLimitError):
        gateway.change_password("token", "Wrong!pass1", "Guess!pass1")
    assert client.calls == ["change_password"]
