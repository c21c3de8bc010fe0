"""CUSTOM_AUTH through moto (patched: see conftest) and the trigger handlers, over HTTP."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError

from authsvc.directory import triggers
from tests.conftest import Emulator
from tests.directory.conftest import PROOF_KEY


@pytest.fixture
def user(cognito: Emulator, directory_client_id: str) -> str:
    email = f"ca-{uuid.uuid4().hex[:10]}@corp.example.com"
    created = cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        TemporaryPassword="Temp-pass-1!",
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "family_name", "Value": "X"}],
    )
    username = str(created["User"]["Username"])
    cognito.client.admin_set_user_password(
        UserPoolId=cognito.pool.user_pool_id,
        Username=username,
        Password="Perm-pass-1!",
        Permanent=True,
    )
    return username


def start(cognito: Emulator, client_id: str, username: str) -> dict[str, Any]:
    return cognito.client.admin_initiate_auth(
        UserPoolId=cognito.pool.user_pool_id,
        ClientId=client_id,
        AuthFlow="CUSTOM_AUTH",
        AuthParameters={"USERNAME": username},
    )


def answer(cognito: Emulator, client_id: str, challenge: dict[str, Any], proof: str) -> Any:
    return cognito.client.admin_respond_to_auth_challenge(
        UserPoolId=cognito.pool.user_pool_id,
        ClientId=client_id,
        ChallengeName="CUSTOM_CHALLENGE",
        Session=challenge["Session"],
        ChallengeResponses={
            "USERNAME": challenge["ChallengeParameters"]["USERNAME"],
            "ANSWER": proof,
        },
    )


def proof_for(
    cognito: Emulator,
    client_id: str,
    challenge: dict[str, Any],
    *,
    key: str = PROOF_KEY,
    pool: str | None = None,
    exp: int | None = None,
    nonce: str | None = None,
) -> str:
    params = challenge["ChallengeParameters"]
    return triggers.sign(
        key,
        params["USERNAME"],
        nonce or params["nonce"],
        pool or cognito.pool.user_pool_id,
        client_id,
        exp if exp is not None else int(time.time()) + 60,
    )


def refused(call: Any) -> None:
    with pytest.raises(ClientError) as info:
        call()
    assert info.value.response["Error"]["Code"] == "NotAuthorizedException"


class TestCustomAuth:
    def test_genuine_proof_gives_tokens(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        challenge = start(cognito, directory_client_id, user)
        assert challenge["ChallengeName"] == "CUSTOM_CHALLENGE"
        assert challenge["ChallengeParameters"]["USERNAME"] == user
        result = answer(
            cognito,
            directory_client_id,
            challenge,
            proof_for(cognito, directory_client_id, challenge),
        )
        assert result["AuthenticationResult"]["AccessToken"]

    def test_forged_key_is_refused(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        challenge = start(cognito, directory_client_id, user)
        forged = proof_for(cognito, directory_client_id, challenge, key="forged-" + "x" * 40)
        refused(lambda: answer(cognito, directory_client_id, challenge, forged))

    def test_replayed_nonce_is_refused(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        first = start(cognito, directory_client_id, user)
        old = proof_for(cognito, directory_client_id, first)
        answer(cognito, directory_client_id, first, old)
        second = start(cognito, directory_client_id, user)
        refused(lambda: answer(cognito, directory_client_id, second, old))
        # and the session that was already answered cannot be answered again
        refused(lambda: answer(cognito, directory_client_id, first, old))

    def test_expired_proof_is_refused(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        challenge = start(cognito, directory_client_id, user)
        stale = proof_for(cognito, directory_client_id, challenge, exp=int(time.time()) - 5)
        refused(lambda: answer(cognito, directory_client_id, challenge, stale))

    def test_another_pools_proof_is_refused(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        challenge = start(cognito, directory_client_id, user)
        other = proof_for(cognito, directory_client_id, challenge, pool="eu-west-1_OtherPool")
        refused(lambda: answer(cognito, directory_client_id, challenge, other))

    def test_main_client_does_not_allow_custom_auth(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        refused(lambda: start(cognito, cognito.pool.client_id, user))

    def test_disabled_user_is_refused(
        self, cognito: Emulator, directory_client_id: str, user: str
    ) -> None:
        cognito.client.admin_disable_user(UserPoolId=cognito.pool.user_pool_id, Username=user)
        refused(lambda: start(cognito, directory_client_id, user))

    def test_other_flows_still_reach_moto(self, cognito: Emulator, user: str) -> None:
        with pytest.raises(ClientError) as info:
            cognito.client.admin_initiate_auth(
                UserPoolId=cognito.pool.user_pool_id,
                ClientId=cognito.pool.client_id,
                AuthFlow="USER_SRP_AUTH",
                AuthParameters={"USERNAME": user},
            )
        assert info.value.response["Error"]["Code"] == "InvalidParameterException"
