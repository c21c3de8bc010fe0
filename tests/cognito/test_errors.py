"""The one Cognito error table (cognito/errors.py) and what clients see when Cognito fails.

Every row of ``TABLE`` is checked against the status and code DESIGN §2 gives for it; the
expectations below are written out by hand so that a changed row is a failing test.
"""

from __future__ import annotations

import logging

import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from authsvc import errors
from authsvc.cognito import errors as cognito_errors
from authsvc.cognito.errors import TABLE, translate
from authsvc.cognito.gateway import CognitoGateway
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, assert_problem, new_email

# (operation, Cognito code) -> (domain class, HTTP status, problem code)
EXPECTED: dict[tuple[str | None, str], tuple[type[errors.AuthSvcError], int, str]] = {
    ("sign_up", "NotAuthorizedException"): (errors.ForbiddenError, 403, "forbidden"),
    ("sign_in", "NotAuthorizedException"): (
        errors.InvalidCredentialsError,
        401,
        "invalid_credentials",
    ),
    ("sign_in", "UserNotFoundException"): (
        errors.InvalidCredentialsError,
        401,
        "invalid_credentials",
    ),
    ("sign_in", "PasswordResetRequiredException"): (
        cognito_errors.PasswordResetRequiredError,
        403,
        "password_reset_required",
    ),
    ("sign_in", "UserNotConfirmedException"): (
        errors.UserNotConfirmedError,
        403,
        "user_not_confirmed",
    ),
    # Some emulators answer a wrong password this way: it must read like any other failure.
    ("sign_in", "InvalidPasswordException"): (
        errors.InvalidCredentialsError,
        401,
        "invalid_credentials",
    ),
    ("respond_to_challenge", "NotAuthorizedException"): (
        errors.InvalidSessionError,
        400,
        "invalid_session",
    ),
    ("respond_to_challenge", "UserNotFoundException"): (
        errors.InvalidSessionError,
        400,
        "invalid_session",
    ),
    ("respond_to_challenge", "ExpiredCodeException"): (
        errors.InvalidSessionError,
        400,
        "invalid_session",
    ),
    ("refresh", "NotAuthorizedException"): (errors.InvalidTokenError, 401, "invalid_token"),
    ("refresh", "UserNotFoundException"): (errors.InvalidTokenError, 401, "invalid_token"),
    ("confirm_sign_up", "UserNotFoundException"): (errors.InvalidCodeError, 400, "invalid_code"),
    ("confirm_sign_up", "NotAuthorizedException"): (
        cognito_errors.UserAlreadyConfirmedError,
        409,
        "conflict",
    ),
    ("confirm_forgot_password", "UserNotFoundException"): (
        errors.InvalidCodeError,
        400,
        "invalid_code",
    ),
    ("confirm_forgot_password", "NotAuthorizedException"): (
        errors.InvalidCodeError,
        400,
        "invalid_code",
    ),
    ("change_password", "NotAuthorizedException"): (
        errors.InvalidCurrentPasswordError,
        400,
        "invalid_current_password",
    ),
    # a cursor whose pagination token Cognito refuses is the client's mistake
    ("list_users", "InvalidToken"): (errors.InvalidCursorError, 400, "invalid_cursor"),
    ("list_users", "InvalidParameterException"): (errors.ValidationError, 422, "validation_error"),
    # Attribute writes: what Cognito still refuses is a value rule of the pool's own.
    **{
        (operation, "InvalidParameterException"): (
            errors.InvalidAttributeValueError,
            400,
            "invalid_attribute_value",
        )
        for operation in (
            "sign_up",
            "admin_create_user",
            "update_user_attributes",
            "admin_update_user_attributes",
        )
    },
    (None, "UserNotFoundException"): (cognito_errors.UnknownUserError, 404, "not_found"),
    (None, "UsernameExistsException"): (cognito_errors.AccountExistsError, 409, "conflict"),
    (None, "AliasExistsException"): (cognito_errors.AccountExistsError, 409, "conflict"),
    (None, "NotAuthorizedException"): (errors.InvalidTokenError, 401, "invalid_token"),
    (None, "UserNotConfirmedException"): (errors.UserNotConfirmedError, 403, "user_not_confirmed"),
    (None, "PasswordResetRequiredException"): (
        cognito_errors.PasswordResetRequiredError,
        403,
        "password_reset_required",
    ),
    (None, "CodeMismatchException"): (errors.InvalidCodeError, 400, "invalid_code"),
    (None, "ExpiredCodeException"): (errors.ExpiredCodeError, 400, "expired_code"),
    (None, "EnableSoftwareTokenMFAException"): (errors.InvalidCodeError, 400, "invalid_code"),
    (None, "InvalidPasswordException"): (errors.InvalidPasswordError, 422, "invalid_password"),
    (None, "PasswordHistoryPolicyViolationException"): (
        errors.InvalidPasswordError,
        422,
        "invalid_password",
    ),
    (None, "InvalidParameterException"): (errors.ValidationError, 422, "validation_error"),
    (None, "GroupExistsException"): (errors.ConflictError, 409, "conflict"),
    (None, "ResourceNotFoundException"): (errors.NotFoundError, 404, "not_found"),
    # per-user limits: 503 for the caller, but resend/forgot hide them (enumeration)
    (None, "LimitExceededException"): (
        cognito_errors.PerUserLimitError,
        503,
        "upstream_unavailable",
    ),
    (None, "TooManyFailedAttemptsException"): (errors.RateLimitedError, 429, "rate_limited"),
    # per-user limits: 503 for the caller, but resend/forgot hide them (enumeration)
    (None, "CodeDeliveryFailureException"): (
        cognito_errors.PerUserLimitError,
        503,
        "upstream_unavailable",
    ),
    (None, "TooManyRequestsException"): (
        errors.UpstreamUnavailableError,
        503,
        "upstream_unavailable",
    ),
    (None, "InternalErrorException"): (
        errors.UpstreamUnavailableError,
        503,
        "upstream_unavailable",
    ),
    (None, "ServiceUnavailable"): (errors.UpstreamUnavailableError, 503, "upstream_unavailable"),
    (None, "ThrottlingException"): (errors.UpstreamUnavailableError, 503, "upstream_unavailable"),
    (None, "ForbiddenException"): (errors.ForbiddenError, 403, "forbidden"),
}

# An operation with no specific row, and not pool-level: default rows apply to it as such.
DEFAULT_OPERATION = "admin_get_user_attributes"

SECRET_KEY = "0123456789abcdef0123456789abcdef"  # outside dev mode one is required
AWS_MESSAGE = "AWS-internal text 7f3c: arn:aws:cognito-idp:us-east-1:123456789012:userpool/x"


def client_error(code: str, operation: str, message: str = AWS_MESSAGE) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 400},
        },
        operation,
    )


def test_every_table_row_has_an_expectation() -> None:
    # A row added to the table without a test (or a test for a removed row) fails here.
    assert set(TABLE) == set(EXPECTED)


@pytest.mark.parametrize(
    ("operation", "code"),
    sorted(TABLE, key=lambda key: (key[0] or "", key[1])),
    ids=lambda value: value or "default",
)
def test_table_row(operation: str | None, code: str) -> None:
    kind, status, problem_code = EXPECTED[(operation, code)]
    op = operation or DEFAULT_OPERATION
    err = translate(op, client_error(code, op))
    assert type(err) is kind
    assert err.status == status
    assert err.code == problem_code
    assert AWS_MESSAGE not in err.detail
    if status in (429, 503):
        assert int(err.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("code", sorted({code for op, code in TABLE if op is None}))
def test_default_rows_apply_to_operations_without_their_own_row(code: str) -> None:
    # get_user has no specific rows: it must get the default translation for every code.
    kind, status, problem_code = EXPECTED[(None, code)]
    err = translate("get_user", client_error(code, "GetUser"))
    assert (type(err), err.status, err.code) == (kind, status, problem_code)


def test_specific_rows_override_the_default() -> None:
    # Same Cognito code, three different meanings depending on the operation.
    assert translate("sign_in", client_error("NotAuthorizedException", "InitiateAuth")).code == (
        "invalid_credentials"
    )
    assert translate(
        "change_password", client_error("NotAuthorizedException", "ChangePassword")
    ).code == ("invalid_current_password")
    assert translate("get_user", client_error("NotAuthorizedException", "GetUser")).code == (
        "invalid_token"
    )


@pytest.mark.parametrize(
    "code",
    ["SomethingNewException", "InvalidLambdaResponseException", "500", "", "UnsupportedOperation"],
)
def test_unmapped_code_is_an_upstream_error_without_aws_text(
    code: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="authsvc.cognito"):
        err = translate("sign_up", client_error(code, "SignUp"))
    assert type(err) is errors.UpstreamError
    assert (err.status, err.code) == (502, "upstream_error")
    assert AWS_MESSAGE not in err.detail
    assert "7f3c" not in err.detail and "arn:aws" not in err.detail
    # The AWS text is logged for operators, not returned.
    assert any(AWS_MESSAGE in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize(
    "operation",
    sorted(cognito_errors._POOL_LEVEL_OPERATIONS),
)
def test_resource_not_found_on_pool_level_operation(operation: str) -> None:
    # The pool or app client is missing: a deployment fault, not a client's 404.
    err = translate(operation, client_error("ResourceNotFoundException", operation))
    assert type(err) is errors.UpstreamError
    assert (err.status, err.code) == (502, "upstream_error")
    assert AWS_MESSAGE not in err.detail


def test_resource_not_found_elsewhere_is_not_found() -> None:
    # e.g. admin_add_user_to_group with an unknown group
    err = translate("admin_add_user_to_group", client_error("ResourceNotFoundException", "X"))
    assert (err.status, err.code) == (404, "not_found")


@pytest.mark.parametrize(
    ("message", "rule"),
    [
        (
            "Password does not conform to policy: Password must have uppercase characters",
            "Password must have uppercase characters",
        ),
        (
            "Password does not conform to policy: Password not long enough",
            "Password not long enough",
        ),
        (
            "Password did not conform with policy: Password must have symbol characters",
            "Password must have symbol characters",
        ),
    ],
)
def test_invalid_password_detail_names_the_rule(message: str, rule: str) -> None:
    err = translate("sign_up", client_error("InvalidPasswordException", "SignUp", message))
    assert (err.status, err.code) == (422, "invalid_password")
    assert err.detail == rule


def test_invalid_password_with_unexpected_text_gives_a_generic_detail() -> None:
    err = translate(
        "sign_up", client_error("InvalidPasswordException", "SignUp", "internal: 1234 xyz")
    )
    assert err.code == "invalid_password"
    assert "1234" not in err.detail
    assert "password" in err.detail.lower()


def test_invalid_password_from_moto_gives_the_generic_detail(cognito) -> None:
    # moto's text names no rule ("does not confirm to the configured password policy"):
    # the detail is then the generic one, never the upstream wording.
    settings = make_settings(cognito, "sqlite://")
    gateway = CognitoGateway(settings, client=cognito.client)
    with pytest.raises(errors.InvalidPasswordError) as caught:
        gateway.sign_up(new_email("weak"), "alllowercase1!", {"family_name": "T"})
    assert caught.value.code == "invalid_password"
    assert caught.value.detail == errors.InvalidPasswordError.default_detail


def test_weak_password_through_the_app_names_the_rule(client) -> None:
    response = client.post(
        "/v1/auth/sign-up",
        json={"email": new_email(), "password": "alllowercase1!", "family_name": "T"},
    )
    body = assert_problem(response, 422, "invalid_password")
    assert "uppercase" in body["detail"].lower()
    assert "alllowercase1!" not in response.text


# --------------------------------------------------------------------------- through the app


def test_unknown_pool_and_client_sign_in_is_upstream_error(cognito, database_url) -> None:
    settings = make_settings(
        cognito,
        database_url,
        cognito_user_pool_id="us-east-1_doesnotexist",
        cognito_client_id="doesnotexist",
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/auth/sign-in", json={"email": new_email(), "password": PASSWORD}
        )
        body = assert_problem(response, 502, "upstream_error")
        assert "doesnotexist" not in body["detail"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/auth/sign-up", {"email": "x@example.com", "password": PASSWORD, "family_name": "T"}),
        ("/v1/auth/sign-up/resend", {"email": "x@example.com"}),
        ("/v1/auth/password/forgot", {"email": "x@example.com"}),
        (
            "/v1/auth/password/reset",
            {"email": "x@example.com", "code": "123456", "new_password": PASSWORD},
        ),
    ],
)
def test_unknown_pool_is_upstream_error_on_public_routes(cognito, database_url, path, body):
    # The app client exists but the configured pool does not: never a 404 or a 500.
    settings = make_settings(cognito, database_url, cognito_user_pool_id="us-east-1_doesnotexist")
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(path, json=body)
        problem = assert_problem(response, 502, "upstream_error")
        assert "does not exist" not in problem["detail"]
        assert "doesnotexist" not in problem["detail"]


def test_unimplemented_emulator_operation_is_upstream_unavailable(cognito, database_url) -> None:
    # Outside dev mode the gateway calls resend_confirmation_code, which moto does not
    # implement: it answers an HTML 500 page. Any Cognito 5xx is an outage: 503 with
    # Retry-After, never a 500 and never the page.
    settings = make_settings(
        cognito, database_url, dev_mode=False, cognito_max_attempts=1, secret_key=SECRET_KEY
    )
    app = create_app(settings, gateway=CognitoGateway(settings, client=cognito.client))
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/v1/auth/sign-up/resend", json={"email": new_email()})
        body = assert_problem(response, 503, "upstream_unavailable")
        assert int(response.headers["Retry-After"]) >= 1
        text = response.text.lower()
        assert "<html" not in text and "not been implemented" not in text
        assert "internal server error" not in body["detail"].lower()


def test_unimplemented_operation_raises_a_domain_error_from_the_gateway(cognito) -> None:
    settings = make_settings(
        cognito, "sqlite://", dev_mode=False, cognito_max_attempts=1, secret_key=SECRET_KEY
    )
    gateway = CognitoGateway(settings, client=cognito.client)
    with pytest.raises(errors.UpstreamUnavailableError):
        gateway.resend_confirmation_code(new_email())


def test_unreachable_cognito_is_upstream_unavailable(cognito, database_url) -> None:
    # A closed port: botocore raises a connection error, not a ClientError.
    settings = make_settings(
        cognito,
        database_url,
        cognito_endpoint_url="http://127.0.0.1:9",
        cognito_max_attempts=1,
        cognito_connect_timeout=1.0,
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(
            "/v1/auth/sign-in", json={"email": new_email(), "password": PASSWORD}
        )
        assert_problem(response, 503, "upstream_unavailable")
        assert int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize(
    "message",
    [
        "Unable to verify secret hash for client 7gq2hbpclqsd1nlh0r6dn6f0be",
        "Client 7gq2hbpclqsd1nlh0r6dn6f0be is configured for secret but secret was not received",
    ],
)
def test_sign_up_refusing_the_client_secret_is_an_upstream_error(message: str) -> None:
    # Cognito's NotAuthorizedException on SignUp: a closed pool is the caller's 403, but a
    # secret it cannot verify is the deployment's fault (AUTHSVC_COGNITO_CLIENT_SECRET).
    err = translate("sign_up", client_error("NotAuthorizedException", "SignUp", message))
    assert (type(err), err.status, err.code) == (errors.UpstreamError, 502, "upstream_error")
