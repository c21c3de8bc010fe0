"""Contract tests for what neither emulator can show: Cognito's documented response shapes
(API reference: InitiateAuth, RespondToAuthChallenge; their error lists), played by botocore's
``Stubber``. botocore validates every stubbed response against Cognito's service model and
every call against the expected parameters, so a wrong USERNAME or SECRET_HASH fails here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from authsvc import errors
from authsvc.auth.schemas import MfaCodeAnswer, NewPasswordAnswer
from authsvc.auth.sealing import ChallengeSealer
from authsvc.auth.service import AuthService
from authsvc.cognito.errors import PasswordResetRequiredError, PerUserLimitError
from authsvc.cognito.gateway import CognitoGateway, secret_hash
from authsvc.cognito.pool import PoolInfoCache
from authsvc.config import Settings
from authsvc.db import Database
from authsvc.revocation.service import RevocationRegistry

POOL_ID = "eu-west-1_AbCdEf123"
CLIENT_ID = "1example23456789abcdefghij"
SECRET = "s3cr3t-" + "x" * 45
EMAIL = "carol@example.com"
USER_ID = "a1b2c3d4-0000-4000-8000-123456789abc"  # the actual username of an email pool
PASSWORD = "Passw0rd!"
NEW_PASSWORD = "N3w-Passw0rd!"
# A Cognito session is an opaque string of several hundred characters.
SESSION = "AYABeC" + "q" * 900
NEXT_SESSION = "AYABeD" + "r" * 900


@pytest.fixture
def stubbed() -> Iterator[tuple[AuthService, Stubber]]:
    settings = Settings(
        cognito_region="eu-west-1",
        cognito_user_pool_id=POOL_ID,
        cognito_client_id=CLIENT_ID,
        cognito_client_secret=SECRET,
        secret_key="contract-test-secret-key-0123",
    )
    client = boto3.client(
        "cognito-idp",
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    gateway = CognitoGateway(settings, client=client)
    db = Database("sqlite://")
    service = AuthService(
        gateway,
        PoolInfoCache(gateway),
        RevocationRegistry(db),
        ChallengeSealer("contract-test-secret-key-0123", ttl_seconds=180),
    )
    with Stubber(client) as stubber:
        yield service, stubber
        stubber.assert_no_pending_responses()
    db.engine.dispose()


def expect_sign_in(stubber: Stubber, response: dict[str, Any]) -> None:
    stubber.add_response(
        "initiate_auth",
        response,
        {
            "ClientId": CLIENT_ID,
            "AuthFlow": "USER_PASSWORD_AUTH",
            "AuthParameters": {
                "USERNAME": EMAIL,
                "PASSWORD": PASSWORD,
                "SECRET_HASH": secret_hash(EMAIL, CLIENT_ID, SECRET),
            },
        },
    )


def expect_answer(
    stubber: Stubber, challenge: str, session: str, answers: dict[str, str], response: Any
) -> None:
    # Cognito's rule: the actual username (USER_ID_FOR_SRP), and SECRET_HASH over it.
    stubber.add_response(
        "respond_to_auth_challenge",
        response,
        {
            "ClientId": CLIENT_ID,
            "ChallengeName": challenge,
            "Session": session,
            "ChallengeResponses": {
                "USERNAME": USER_ID,
                **answers,
                "SECRET_HASH": secret_hash(USER_ID, CLIENT_ID, SECRET),
            },
        },
    )


def expect_pool(stubber: Stubber) -> None:
    stubber.add_response(
        "describe_user_pool",
        {
            "UserPool": {
                "Id": POOL_ID,
                "Policies": {
                    "PasswordPolicy": {
                        "MinimumLength": 8,
                        "RequireUppercase": True,
                        "RequireLowercase": True,
                        "RequireNumbers": True,
                        "RequireSymbols": True,
                    }
                },
                "SchemaAttributes": [{"Name": "email", "Required": True, "Mutable": True}],
            }
        },
        {"UserPoolId": POOL_ID},
    )
    stubber.add_response(
        "describe_user_pool_client",
        {"UserPoolClient": {"ClientId": CLIENT_ID, "UserPoolId": POOL_ID}},
        {"UserPoolId": POOL_ID, "ClientId": CLIENT_ID},
    )


class TestChallengeShapes:
    def test_new_password_required_then_software_token_mfa(self, stubbed):
        service, stubber = stubbed
        expect_sign_in(
            stubber,
            {
                "ChallengeName": "NEW_PASSWORD_REQUIRED",
                "Session": SESSION,
                "ChallengeParameters": {
                    "USER_ID_FOR_SRP": USER_ID,
                    "requiredAttributes": '["userAttributes.family_name"]',
                    "userAttributes": json.dumps(
                        {"email_verified": "true", "email": EMAIL, "custom:team": "blue"}
                    ),
                },
            },
        )
        result = service.sign_in(EMAIL, PASSWORD)
        assert result.kind == "challenge"
        assert result.challenge == "NEW_PASSWORD_REQUIRED"
        assert result.parameters == {
            "requiredAttributes": ["family_name"],
            "userAttributes": {"email_verified": "true", "email": EMAIL, "team": "blue"},
        }
        assert SESSION not in result.session and USER_ID not in result.session

        expect_pool(stubber)
        expect_answer(
            stubber,
            "NEW_PASSWORD_REQUIRED",
            SESSION,
            {"NEW_PASSWORD": NEW_PASSWORD},
            {
                "ChallengeName": "SOFTWARE_TOKEN_MFA",
                "Session": NEXT_SESSION,
                "ChallengeParameters": {"USER_ID_FOR_SRP": USER_ID},
            },
        )
        request = NewPasswordAnswer(
            challenge="NEW_PASSWORD_REQUIRED", session=result.session, new_password=NEW_PASSWORD
        )
        mfa = service.answer_challenge(request, service.open_challenge(request))
        assert mfa.kind == "challenge" and mfa.challenge == "SOFTWARE_TOKEN_MFA"
        assert mfa.parameters == {}

        # The next answer is sent as the same actual username, with the email still sealed.
        expect_answer(
            stubber,
            "SOFTWARE_TOKEN_MFA",
            NEXT_SESSION,
            {"SOFTWARE_TOKEN_MFA_CODE": "123456"},
            {},  # no tokens and no challenge: an unexpected answer
        )
        answer = MfaCodeAnswer(
            challenge="SOFTWARE_TOKEN_MFA", session=mfa.session, code="123456", email=EMAIL
        )
        sealed = service.open_challenge(answer)
        assert (sealed.username, sealed.email) == (USER_ID, EMAIL)
        with pytest.raises(errors.UpstreamError):
            service.answer_challenge(answer, sealed)

    def test_sms_mfa_parameters(self, stubbed):
        service, stubber = stubbed
        expect_sign_in(
            stubber,
            {
                "ChallengeName": "SMS_MFA",
                "Session": SESSION,
                "ChallengeParameters": {
                    "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
                    "CODE_DELIVERY_DESTINATION": "+*******1234",
                    "USER_ID_FOR_SRP": USER_ID,
                },
            },
        )
        result = service.sign_in(EMAIL, PASSWORD)
        assert result.challenge == "SMS_MFA"
        assert result.parameters == {
            "CODE_DELIVERY_DELIVERY_MEDIUM": "SMS",
            "CODE_DELIVERY_DESTINATION": "+*******1234",
        }
        stubber.add_client_error(
            "respond_to_auth_challenge",
            service_error_code="CodeMismatchException",
            service_message="Invalid code or auth state for the user.",
            http_status_code=400,
            expected_params={
                "ClientId": CLIENT_ID,
                "ChallengeName": "SMS_MFA",
                "Session": SESSION,
                "ChallengeResponses": {
                    "USERNAME": USER_ID,
                    "SMS_MFA_CODE": "654321",
                    "SECRET_HASH": secret_hash(USER_ID, CLIENT_ID, SECRET),
                },
            },
        )
        answer = MfaCodeAnswer(challenge="SMS_MFA", session=result.session, code="654321")
        with pytest.raises(errors.InvalidCodeError):
            service.answer_challenge(answer, service.open_challenge(answer))

    def test_a_session_names_its_user_whatever_the_body_says(self, stubbed):
        service, stubber = stubbed
        expect_sign_in(
            stubber,
            {
                "ChallengeName": "SOFTWARE_TOKEN_MFA",
                "Session": SESSION,
                "ChallengeParameters": {"USER_ID_FOR_SRP": USER_ID},
            },
        )
        result = service.sign_in(EMAIL, PASSWORD)
        answer = MfaCodeAnswer(
            challenge="SOFTWARE_TOKEN_MFA",
            session=result.session,
            code="123456",
            email="mallory@example.com",
        )
        with pytest.raises(errors.InvalidSessionError):
            service.open_challenge(answer)


@pytest.mark.parametrize(
    ("code", "status", "expected"),
    [
        ("PasswordResetRequiredException", 400, PasswordResetRequiredError),
        ("UserNotConfirmedException", 400, errors.UserNotConfirmedError),
        ("NotAuthorizedException", 400, errors.InvalidCredentialsError),
        ("UserNotFoundException", 400, errors.InvalidCredentialsError),
        ("InvalidPasswordException", 400, errors.InvalidCredentialsError),
        ("LimitExceededException", 400, PerUserLimitError),
        ("TooManyRequestsException", 400, errors.UpstreamUnavailableError),
        ("InternalErrorException", 500, errors.UpstreamUnavailableError),
        # A code no table knows, answered with a 5xx: an outage, not a bad gateway.
        ("SomethingNewException", 500, errors.UpstreamUnavailableError),
        ("SomethingNewException", 503, errors.UpstreamUnavailableError),
        # ... and with a 4xx: unmapped, 502.
        ("SomethingNewException", 400, errors.UpstreamError),
    ],
)
def test_sign_in_errors(stubbed, code, status, expected):
    service, stubber = stubbed
    stubber.add_client_error(
        "initiate_auth", service_error_code=code, service_message="…", http_status_code=status
    )
    with pytest.raises(expected) as caught:
        service.sign_in(EMAIL, PASSWORD)
    problem = caught.value
    if problem.status == 503:
        assert int(problem.headers["Retry-After"]) >= 1
    if code == "PasswordResetRequiredException":
        assert (problem.status, problem.code) == (403, "password_reset_required")
    if code == "UserNotConfirmedException":
        assert (problem.status, problem.code) == (403, "user_not_confirmed")
    if expected is errors.InvalidCredentialsError:
        assert (problem.status, problem.code, problem.detail) == (
            401,
            "invalid_credentials",
            errors.InvalidCredentialsError.default_detail,
        )
