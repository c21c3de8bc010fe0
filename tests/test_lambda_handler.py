"""The Lambda entry point: API Gateway HTTP API (payload 2.0) events through Mangum to the
real app, against moto over HTTP and the test database; secrets from Secrets Manager (moto)."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from authsvc.lambda_handler import LambdaApp, is_scheduled_event, resolve_secrets
from authsvc.main import create_app
from tests.conftest import Emulator, make_settings
from tests.helpers import PASSWORD, new_email

CONTEXT = SimpleNamespace(function_name="authsvc", aws_request_id="test", memory_limit_in_mb=1024)


def http_event(
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An API Gateway HTTP API event, as the $default stage sends it (payload format 2.0)."""
    return {
        "version": "2.0",
        "routeKey": "ANY /v1/{proxy+}",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "content-type": "application/json",
            "user-agent": "lambda-test",
            "x-forwarded-proto": "https",
            "x-forwarded-for": "203.0.113.9",
            **(headers or {}),
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "203.0.113.9",
                "userAgent": "lambda-test",
            },
            "requestId": uuid.uuid4().hex,
            "routeKey": "ANY /v1/{proxy+}",
            "stage": "$default",
            "time": "02/Dec/2026:18:00:00 +0000",
            "timeEpoch": 1796234400000,
        },
        "body": None if body is None else json.dumps(body),
        "isBase64Encoded": False,
    }


def body_of(response: dict[str, Any]) -> Any:
    raw = response["body"]
    if response.get("isBase64Encoded"):
        raw = base64.b64decode(raw).decode()
    return json.loads(raw)


@pytest.fixture(scope="module")
def lambda_app(cognito: Emulator, database_url: str) -> Iterator[LambdaApp]:
    # As deployed: `serve` semantics (not dev mode), real Cognito calls to the emulator.
    settings = make_settings(cognito, database_url, dev_mode=False)
    app = LambdaApp(create_app(settings))
    yield app
    app.close()


def confirmed_user_in_pool(cognito: Emulator) -> str:
    email = new_email("lambda")
    cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Lambda"},
        ],
    )
    cognito.client.admin_set_user_password(
        UserPoolId=cognito.pool.user_pool_id, Username=email, Password=PASSWORD, Permanent=True
    )
    return email


class TestHttpEvents:
    def test_healthz_answers(self, lambda_app: LambdaApp) -> None:
        response = lambda_app(http_event("GET", "/healthz"), CONTEXT)
        assert response["statusCode"] == 200
        assert body_of(response) == {"status": "ok"}

    def test_sign_in_session_and_sign_out_revoke(
        self, lambda_app: LambdaApp, cognito: Emulator
    ) -> None:
        email = confirmed_user_in_pool(cognito)
        signed_in = lambda_app(
            http_event("POST", "/v1/auth/sign-in", {"email": email, "password": PASSWORD}),
            CONTEXT,
        )
        assert signed_in["statusCode"] == 200, signed_in["body"]
        tokens = body_of(signed_in)
        assert tokens["kind"] == "tokens"
        assert signed_in["headers"]["cache-control"] == "no-store"
        bearer = {"authorization": f"Bearer {tokens['access_token']}"}

        session = lambda_app(http_event("GET", "/v1/auth/session", headers=bearer), CONTEXT)
        assert session["statusCode"] == 200, session["body"]
        assert body_of(session)["client_id"] == cognito.pool.client_id

        signed_out = lambda_app(
            http_event(
                "POST",
                "/v1/auth/sign-out",
                {"refresh_token": tokens["refresh_token"]},
                headers=bearer,
            ),
            CONTEXT,
        )
        assert signed_out["statusCode"] == 204, signed_out["body"]
        # The revocation applies to the next invocation: the token is refused.
        after = lambda_app(http_event("GET", "/v1/auth/session", headers=bearer), CONTEXT)
        assert after["statusCode"] == 401
        assert body_of(after)["code"] == "invalid_token"

    def test_wrong_password_is_a_problem_document(
        self, lambda_app: LambdaApp, cognito: Emulator
    ) -> None:
        email = confirmed_user_in_pool(cognito)
        response = lambda_app(
            http_event("POST", "/v1/auth/sign-in", {"email": email, "password": "Wrong-pass1!"}),
            CONTEXT,
        )
        assert response["statusCode"] == 401
        assert response["headers"]["content-type"] == "application/problem+json"
        assert body_of(response)["code"] == "invalid_credentials"

    def test_bad_body_is_a_422_problem(self, lambda_app: LambdaApp) -> None:
        response = lambda_app(http_event("POST", "/v1/auth/sign-in", {"email": 3}), CONTEXT)
        assert response["statusCode"] == 422
        assert body_of(response)["status"] == 422

    def test_audit_rows_are_written_before_the_invocation_ends(
        self, lambda_app: LambdaApp, cognito: Emulator
    ) -> None:
        lambda_app.state.audit.stop()  # no background writer: only the handler's flush
        try:
            email = confirmed_user_in_pool(cognito)
            event = http_event("POST", "/v1/auth/sign-in", {"email": email, "password": "Nope-1!x"})
            assert lambda_app(event, CONTEXT)["statusCode"] == 401
            assert lambda_app.state.audit.pending() == 0
        finally:
            lambda_app.state.audit._stop.clear()
            lambda_app.state.audit.start()


class TestScheduledEvents:
    def test_scheduled_event_runs_the_maintenance_pass(self, lambda_app: LambdaApp) -> None:
        event = {
            "version": "0",
            "id": uuid.uuid4().hex,
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": "123456789012",
            "time": "2026-12-02T18:00:00Z",
            "region": "us-east-1",
            "resources": ["arn:aws:events:us-east-1:123456789012:rule/authsvc-maintenance"],
            "detail": {},
        }
        assert is_scheduled_event(event)
        result = lambda_app(event, CONTEXT)
        assert set(result) >= {"sent", "sign_outs", "audit_written", "reconcile_accepted"}
        assert all(isinstance(v, int) for v in result.values())

    def test_http_events_are_not_scheduled(self) -> None:
        assert not is_scheduled_event(http_event("GET", "/healthz"))


class TestSecrets:
    def test_secret_arns_are_resolved_and_set_values_kept(self, cognito: Emulator) -> None:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=cognito.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        name = f"authsvc-lambda-{uuid.uuid4().hex[:8]}"
        url = client.create_secret(Name=f"{name}-db", SecretString="postgresql://u:p@db/authsvc")
        key = client.create_secret(Name=f"{name}-key", SecretString="from-secrets-manager")
        environ = {
            "AUTHSVC_DATABASE_URL_SECRET_ARN": url["ARN"],
            "AUTHSVC_SECRET_KEY_SECRET_ARN": key["ARN"],
            "AUTHSVC_SECRET_KEY": "already-set-explicitly",
            "AUTHSVC_METRICS_TOKEN_SECRET_ARN": "",
            "OTHER_SECRET_ARN": key["ARN"],
        }
        assert resolve_secrets(environ, client) == ["AUTHSVC_DATABASE_URL"]
        assert environ["AUTHSVC_DATABASE_URL"] == "postgresql://u:p@db/authsvc"
        assert environ["AUTHSVC_SECRET_KEY"] == "already-set-explicitly"
        assert "AUTHSVC_METRICS_TOKEN" not in environ
        assert "OTHER" not in environ

    def test_a_missing_secret_fails_loudly(self, cognito: Emulator) -> None:
        client = boto3.client(
            "secretsmanager",
            endpoint_url=cognito.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        )
        environ = {"AUTHSVC_DATABASE_URL_SECRET_ARN": "authsvc-no-such-secret"}
        with pytest.raises(client.exceptions.ResourceNotFoundException):
            resolve_secrets(environ, client)


class TestCommandEvents:
    def test_migrate_runs_as_a_one_off_command(
        self, lambda_app: LambdaApp, database_url: str
    ) -> None:
        result = lambda_app({"command": ["migrate", "--database-url", database_url]}, CONTEXT)
        assert result["exit_code"] == 0, result["output"]

    def test_servers_are_not_commands(self, lambda_app: LambdaApp) -> None:
        for command in (["serve"], ["dev"], [], "migrate", [1]):
            result = lambda_app({"command": command}, CONTEXT)
            assert result["exit_code"] == 2
            assert "create-admin" in result["output"]

    def test_bad_arguments_report_the_usage(self, lambda_app: LambdaApp) -> None:
        result = lambda_app({"command": ["migrate", "--no-such-flag"]}, CONTEXT)
        assert result["exit_code"] == 2
        assert "usage: authsvc" in result["output"]
