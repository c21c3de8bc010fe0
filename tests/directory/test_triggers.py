"""The three Lambda handlers as plain functions, with Cognito's documented event shapes
(Define/Create/Verify Auth Challenge, "Custom authentication challenge Lambda triggers")."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from authsvc.directory import triggers

POOL = "us-east-1_Pool1"
CLIENT = "directoryclient1"
USER = "0b8e8c1e-1111-2222-3333-444455556666"
KEY = "current-key-" + "a" * 40
OLD_KEY = "previous-key-" + "b" * 40


def event(source: str, request: dict[str, Any], **top: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "version": "1",
        "region": "us-east-1",
        "userPoolId": POOL,
        "userName": USER,
        "callerContext": {"awsSdkVersion": "aws-sdk-unknown-unknown", "clientId": CLIENT},
        "triggerSource": source,
        "request": {"userAttributes": {"sub": USER, "email": "a@corp.example.com"}, **request},
        "response": {},
    }
    base.update(top)
    return base


def verify_event(answer: str, nonce: str, **top: Any) -> dict[str, Any]:
    return event(
        "VerifyAuthChallengeResponse_Authentication",
        {
            "privateChallengeParameters": {"nonce": nonce},
            "challengeAnswer": answer,
            "clientMetadata": {},
            "userNotFound": False,
        },
        **top,
    )


def proof(nonce: str, *, key: str = KEY, user: str = USER, pool: str = POOL, exp: int = 0) -> str:
    return triggers.sign(key, user, nonce, pool, CLIENT, exp or int(time.time()) + 60)


def session(*results: bool) -> list[dict[str, Any]]:
    return [
        {"challengeName": "CUSTOM_CHALLENGE", "challengeResult": r, "challengeMetadata": ""}
        for r in results
    ]


class TestDefine:
    def test_first_call_asks_for_one_custom_challenge(self) -> None:
        response = triggers.define(event("DefineAuthChallenge_Authentication", {"session": []}))[
            "response"
        ]
        assert response == {
            "challengeName": "CUSTOM_CHALLENGE",
            "issueTokens": False,
            "failAuthentication": False,
        }

    def test_correct_answer_issues_tokens(self) -> None:
        response = triggers.define(
            event("DefineAuthChallenge_Authentication", {"session": session(True)})
        )["response"]
        assert response["issueTokens"] is True and response["failAuthentication"] is False

    @pytest.mark.parametrize("history", [session(False), session(False, True), session(True, True)])
    def test_anything_else_fails(self, history: list[dict[str, Any]]) -> None:
        response = triggers.define(
            event("DefineAuthChallenge_Authentication", {"session": history})
        )["response"]
        assert response["issueTokens"] is False and response["failAuthentication"] is True

    def test_a_password_challenge_in_the_session_fails(self) -> None:
        history = [{"challengeName": "PASSWORD_VERIFIER", "challengeResult": True}]
        response = triggers.define(
            event("DefineAuthChallenge_Authentication", {"session": history})
        )["response"]
        assert response["failAuthentication"] is True

    def test_unknown_user_fails(self) -> None:
        response = triggers.define(
            event("DefineAuthChallenge_Authentication", {"session": [], "userNotFound": True})
        )["response"]
        assert response["failAuthentication"] is True and "challengeName" not in response


class TestCreate:
    def test_fresh_nonce_in_public_and_private_parameters(self) -> None:
        req = {"challengeName": "CUSTOM_CHALLENGE", "session": []}
        first = triggers.create(event("CreateAuthChallenge_Authentication", req))["response"]
        second = triggers.create(event("CreateAuthChallenge_Authentication", req))["response"]
        nonce = first["publicChallengeParameters"]["nonce"]
        assert first["privateChallengeParameters"]["nonce"] == nonce
        assert len(nonce) >= 32
        assert second["publicChallengeParameters"]["nonce"] != nonce


class TestVerify:
    def check(self, answer: str, nonce: str = "nonce-1", **top: Any) -> bool:
        return bool(
            triggers.check(verify_event(answer, nonce, **top), [KEY, OLD_KEY], int(time.time()))
        )

    def test_proof_for_this_challenge_is_correct(self) -> None:
        assert self.check(proof("nonce-1"))

    def test_previous_key_is_accepted_during_rotation(self) -> None:
        assert self.check(proof("nonce-1", key=OLD_KEY))

    def test_forged_key_is_refused(self) -> None:
        assert not self.check(proof("nonce-1", key="attacker-key-" + "c" * 40))

    def test_replayed_nonce_is_refused(self) -> None:
        # A proof made for an earlier challenge: its nonce is not this challenge's.
        assert not self.check(proof("nonce-0"), nonce="nonce-1")

    def test_expired_proof_is_refused(self) -> None:
        assert not self.check(proof("nonce-1", exp=int(time.time()) - 1))

    def test_proof_valid_too_long_is_refused(self) -> None:
        assert not self.check(proof("nonce-1", exp=int(time.time()) + triggers.MAX_TTL + 60))

    def test_another_pools_proof_is_refused(self) -> None:
        assert not self.check(proof("nonce-1", pool="eu-west-1_Other"))

    def test_another_clients_proof_is_refused(self) -> None:
        other = {"awsSdkVersion": "x", "clientId": "mainclient"}
        assert not self.check(proof("nonce-1"), callerContext=other)

    def test_another_users_proof_is_refused(self) -> None:
        assert not self.check(proof("nonce-1", user="someone-else"))

    def test_tampered_claims_are_refused(self) -> None:
        body, _, mac = proof("nonce-1", user="someone-else").partition(".")
        genuine_body = proof("nonce-1").partition(".")[0]
        assert not self.check(f"{genuine_body}.{mac}")
        assert not self.check(f"{body}.")

    @pytest.mark.parametrize("answer", ["", ".", "garbage", "a.b.c", "!!!.???"])
    def test_malformed_answers_are_refused(self, answer: str) -> None:
        assert not self.check(answer)

    def test_unknown_user_is_refused(self) -> None:
        e = verify_event(proof("nonce-1"), "nonce-1")
        e["request"]["userNotFound"] = True
        assert not triggers.check(e, [KEY], int(time.time()))

    def test_no_keys_refuses_everything(self) -> None:
        assert not triggers.check(verify_event(proof("nonce-1"), "nonce-1"), [], int(time.time()))

    def test_handler_reads_the_key_from_secrets_manager_and_follows_a_rotation(
        self, cognito: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        import boto3

        sm = boto3.client(
            "secretsmanager",
            endpoint_url=cognito.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        arn = sm.create_secret(
            Name=f"proof-{time.time_ns()}", SecretString=json.dumps({"current": KEY})
        )["ARN"]
        monkeypatch.setenv("PROOF_KEY_SECRET_ARN", arn)
        monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", cognito.endpoint_url)
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setattr(triggers, "_keys", None)
        good = triggers.verify(verify_event(proof("nonce-1"), "nonce-1"))
        bad = triggers.verify(verify_event(proof("nonce-2"), "nonce-1"))
        assert good["response"] == {"answerCorrect": True}
        assert bad["response"] == {"answerCorrect": False}
        # Rotation: the secret gains a new current key; a warm Lambda whose copy is more
        # than 10 s old re-reads it when a proof fails, and still accepts the old key.
        sm.put_secret_value(
            SecretId=arn, SecretString=json.dumps({"current": OLD_KEY, "previous": KEY})
        )
        fetched_at, keys = triggers._keys
        monkeypatch.setattr(triggers, "_keys", (fetched_at - 11, keys))
        rotated = triggers.verify(verify_event(proof("nonce-1", key=OLD_KEY), "nonce-1"))
        assert rotated["response"] == {"answerCorrect": True}
        still = triggers.verify(verify_event(proof("nonce-1"), "nonce-1"))
        assert still["response"] == {"answerCorrect": True}


class TestKeys:
    def test_plain_key(self) -> None:
        assert triggers.parse_keys(KEY) == [KEY]

    def test_rotation_document(self) -> None:
        raw = json.dumps({"current": KEY, "previous": OLD_KEY})
        assert triggers.parse_keys(raw) == [KEY, OLD_KEY]

    def test_short_keys_are_ignored(self) -> None:
        assert triggers.parse_keys("short") == []
        assert triggers.parse_keys('{"current": "short"}') == []
