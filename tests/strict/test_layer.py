"""The strict Cognito layer enforces what moto skips (so the flows run through it prove
something), and authsvc's challenge sessions cannot be redirected to another user."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import jwt
import pytest
from botocore.exceptions import ClientError
from fastapi.testclient import TestClient

from authsvc.cognito.gateway import secret_hash
from authsvc.main import create_app
from tests.audit.conftest import table_rows
from tests.conftest import make_settings
from tests.helpers import assert_problem, new_email
from tests.strict.layer import MOTO_CODE_HEADER, StrictCognito

TEMPORARY = "Temp-Passw0rd!"
NEW = "Brand-New-Passw0rd!"


@pytest.fixture(scope="module")
def idp(strict_url: str, cognito: Any) -> Any:
    """A boto3 client that talks to Cognito through the strict layer."""
    return boto3.client(
        "cognito-idp",
        endpoint_url=strict_url,
        region_name=cognito.pool.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


class Pool:
    def __init__(self, cognito: Any) -> None:
        self.id = cognito.pool.user_pool_id
        self.client_id = cognito.pool.client_id
        self.secret = cognito.pool.client_secret
        self.admin = cognito.client

    def hash(self, name: str) -> str:
        return secret_hash(name, self.client_id, self.secret)

    def invited(self) -> tuple[str, str]:
        """An admin-created user: (email, actual username)."""
        email = new_email("strict")
        user = self.admin.admin_create_user(
            UserPoolId=self.id,
            Username=email,
            TemporaryPassword=TEMPORARY,
            MessageAction="SUPPRESS",
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "family_name", "Value": "Strict"},
            ],
        )["User"]
        assert user["Username"] != email  # email is the pool's username attribute: a UUID
        return email, user["Username"]


@pytest.fixture(scope="module")
def pool(cognito: Any) -> Pool:
    return Pool(cognito)


def refused(strict: StrictCognito, call: Any, code: str) -> None:
    before = len(strict.refusals)
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code
    assert len(strict.refusals) == before + 1


def sign_in(idp: Any, pool: Pool, email: str, password: str = TEMPORARY) -> dict[str, Any]:
    response: dict[str, Any] = idp.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password, "SECRET_HASH": pool.hash(email)},
    )
    return response


def answer(idp: Any, pool: Pool, session: str, username: str, hashed: str) -> dict[str, Any]:
    response: dict[str, Any] = idp.respond_to_auth_challenge(
        ClientId=pool.client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=session,
        ChallengeResponses={
            "USERNAME": username,
            "NEW_PASSWORD": NEW,
            "SECRET_HASH": pool.hash(hashed),
        },
    )
    return response


class TestTheLayerEnforcesCognitosRules:
    def test_sign_in_without_or_with_a_wrong_secret_hash_is_refused(self, idp, pool, strict):
        email, _ = pool.invited()
        params = {"USERNAME": email, "PASSWORD": TEMPORARY}
        for extra in ({}, {"SECRET_HASH": pool.hash(email.upper())}):
            refused(
                strict,
                lambda extra=extra: idp.initiate_auth(
                    ClientId=pool.client_id,
                    AuthFlow="USER_PASSWORD_AUTH",
                    AuthParameters={**params, **extra},
                ),
                "NotAuthorizedException",
            )
        assert sign_in(idp, pool, email)["ChallengeName"] == "NEW_PASSWORD_REQUIRED"

    def test_challenge_parameters_are_shaped_like_cognitos(self, idp, pool):
        email, username = pool.invited()
        parameters = sign_in(idp, pool, email)["ChallengeParameters"]
        assert parameters["USER_ID_FOR_SRP"] == username
        assert "USERNAME" not in parameters
        assert json.loads(parameters["requiredAttributes"]) == []
        assert json.loads(parameters["userAttributes"])["email"] == email

    def test_answering_with_the_alias_is_refused(self, idp, pool, strict):
        # The bug of issue 10: USERNAME = the email, SECRET_HASH over it. moto accepts it.
        email, username = pool.invited()
        session = sign_in(idp, pool, email)["Session"]
        refused(strict, lambda: answer(idp, pool, session, email, email), "NotAuthorizedException")
        # The actual username, but SECRET_HASH still over the alias: refused too.
        refused(
            strict, lambda: answer(idp, pool, session, username, email), "NotAuthorizedException"
        )
        tokens = answer(idp, pool, session, username, username)["AuthenticationResult"]
        assert jwt.decode(tokens["AccessToken"], options={"verify_signature": False})["sub"]

    def test_answering_as_another_user_is_refused(self, idp, pool, strict):
        email, _ = pool.invited()
        _, other = pool.invited()
        session = sign_in(idp, pool, email)["Session"]
        refused(strict, lambda: answer(idp, pool, session, other, other), "NotAuthorizedException")

    def test_refresh_hash_is_over_the_actual_username(self, idp, pool, strict):
        email, username = pool.invited()
        session = sign_in(idp, pool, email)["Session"]
        answer(idp, pool, session, username, username)
        # A password sign-in: moto files this refresh token under the email.
        token = sign_in(idp, pool, email, NEW)["AuthenticationResult"]["RefreshToken"]

        def refresh(name: str) -> dict[str, Any]:
            response: dict[str, Any] = idp.initiate_auth(
                ClientId=pool.client_id,
                AuthFlow="REFRESH_TOKEN_AUTH",
                AuthParameters={"REFRESH_TOKEN": token, "SECRET_HASH": pool.hash(name)},
            )
            return response

        refused(strict, lambda: refresh(email), "NotAuthorizedException")
        assert refresh(username)["AuthenticationResult"]["AccessToken"]

    def test_reset_code_is_checked(self, idp, pool, strict):
        email, username = pool.invited()
        session = sign_in(idp, pool, email)["Session"]
        answer(idp, pool, session, username, username)
        sent = idp.forgot_password(
            ClientId=pool.client_id, Username=email, SecretHash=pool.hash(email)
        )
        code = sent["ResponseMetadata"]["HTTPHeaders"][MOTO_CODE_HEADER]

        def confirm(with_code: str) -> None:
            idp.confirm_forgot_password(
                ClientId=pool.client_id,
                Username=email,
                SecretHash=pool.hash(email),
                ConfirmationCode=with_code,
                Password="Another-Passw0rd!",
            )

        # moto accepts any code without its prefix; Cognito does not.
        refused(strict, lambda: confirm("999999"), "CodeMismatchException")
        confirm(code)
        assert sign_in(idp, pool, email, "Another-Passw0rd!")["AuthenticationResult"]

    def test_self_service_calls_need_the_secret_hash(self, idp, pool, strict):
        email = new_email("strictsignup")
        refused(
            strict,
            lambda: idp.sign_up(
                ClientId=pool.client_id,
                Username=email,
                Password=NEW,
                UserAttributes=[{"Name": "family_name", "Value": "Strict"}],
            ),
            "NotAuthorizedException",
        )
        refused(
            strict,
            lambda: idp.forgot_password(
                ClientId=pool.client_id, Username=email, SecretHash=pool.hash(email + "x")
            ),
            "NotAuthorizedException",
        )


# --------------------------------------------------------------------------- authsvc on top


@pytest.fixture
def two_pending(client, pool) -> Iterator[tuple[tuple[str, str, dict], tuple[str, str, dict]]]:
    """Two admin-created users, each with the NEW_PASSWORD_REQUIRED challenge authsvc gave."""
    out = []
    for _ in range(2):
        email, username = pool.invited()
        response = client.post("/v1/auth/sign-in", json={"email": email, "password": TEMPORARY})
        assert response.status_code == 200, response.text
        out.append((email, username, response.json()))
    yield out[0], out[1]


class TestSealedChallengeSessions:
    def test_the_client_never_sees_cognitos_session_or_the_username(self, two_pending, strict):
        (email, username, challenge), _ = two_pending
        assert challenge["kind"] == "challenge"
        assert "USER_ID_FOR_SRP" not in challenge["parameters"]
        assert username not in challenge["session"]
        assert challenge["parameters"]["userAttributes"]["email"] == email
        issued = [s for s in strict._backend.sessions if s in challenge["session"]]
        assert issued == []

    def test_a_session_cannot_be_answered_as_another_user(self, client, two_pending, strict):
        (email_a, username_a, first), (email_b, _, _) = two_pending
        body = {"challenge": "NEW_PASSWORD_REQUIRED", "session": first["session"]}
        response = client.post(
            "/v1/auth/challenge", json={**body, "email": email_b, "new_password": NEW}
        )
        assert_problem(response, 400, "invalid_session")
        # B's password is untouched: the temporary one still leads to B's own challenge.
        again = client.post("/v1/auth/sign-in", json={"email": email_b, "password": TEMPORARY})
        assert again.json()["challenge"] == "NEW_PASSWORD_REQUIRED"

        # Without an email (or with A's), the session answers for A, as A's actual username.
        calls = len(strict.calls)
        response = client.post("/v1/auth/challenge", json={**body, "new_password": NEW})
        assert response.status_code == 200, response.text
        claims = jwt.decode(response.json()["access_token"], options={"verify_signature": False})
        assert claims["username"] == username_a
        assert "RespondToAuthChallenge" in strict.calls[calls:]
        # Refresh goes through the layer too: SECRET_HASH over the actual username.
        refreshed = client.post(
            "/v1/auth/refresh", json={"refresh_token": response.json()["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        assert_problem(
            client.post("/v1/auth/sign-in", json={"email": email_a, "password": TEMPORARY}),
            401,
            "invalid_credentials",
        )

    def test_a_session_for_another_challenge_is_invalid_session(self, client, two_pending):
        (email, _, first), _ = two_pending
        response = client.post(
            "/v1/auth/challenge",
            json={"challenge": "SOFTWARE_TOKEN_MFA", "session": first["session"], "code": "123456"},
        )
        assert_problem(response, 400, "invalid_session")

    def test_a_tampered_session_is_invalid_session(self, client, two_pending):
        (_, _, first), _ = two_pending
        session = first["session"]
        tampered = session[:40] + ("A" if session[40] != "A" else "B") + session[41:]
        response = client.post(
            "/v1/auth/challenge",
            json={"challenge": "NEW_PASSWORD_REQUIRED", "session": tampered, "new_password": NEW},
        )
        assert_problem(response, 400, "invalid_session")

    def test_audit_target_is_the_sealed_user(self, client, two_pending):
        (email_a, _, first), (email_b, _, _) = two_pending
        body = {"challenge": "NEW_PASSWORD_REQUIRED", "session": first["session"]}
        client.post("/v1/auth/challenge", json={**body, "email": email_b, "new_password": NEW})
        assert (
            client.post("/v1/auth/challenge", json={**body, "new_password": NEW}).status_code == 200
        )
        rows = [r for r in table_rows(client) if r.target_email in {email_a, email_b}]
        answered = [r for r in rows if r.action == "challenge_answered"]
        assert [r.target_email for r in answered] == [email_a]
        # The refused attempt names nobody: not the email the client claimed.
        failed = [r for r in table_rows(client) if r.action == "challenge_failed"]
        assert all(r.target_email != email_b for r in failed)


# --------------------------------------------------------------------------- closed sign-up


@pytest.fixture(scope="module")
def admin_only_pool(cognito: Any) -> Iterator[tuple[str, str]]:
    """A pool where only administrators create users, and an app client without a secret."""
    boto = cognito.client
    pool_id = boto.create_user_pool(
        PoolName="strict-admin-only",
        UsernameAttributes=["email"],
        AdminCreateUserConfig={"AllowAdminCreateUserOnly": True},
    )["UserPool"]["Id"]
    client_id = boto.create_user_pool_client(
        UserPoolId=pool_id,
        ClientName="strict-admin-only-app",
        ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"],
    )["UserPoolClient"]["ClientId"]
    yield pool_id, client_id
    boto.delete_user_pool(UserPoolId=pool_id)


def _sign_up(settings: Any) -> Any:
    with TestClient(create_app(settings), raise_server_exceptions=False) as app:
        body = {"email": new_email("closed"), "password": NEW, "family_name": "Closed"}
        return app.post("/v1/auth/sign-up", json=body)


class TestSignUpTheUserPoolRefuses:
    def test_the_layer_refuses_sign_up_where_only_admins_create_users(
        self, idp, admin_only_pool, strict
    ):
        _, client_id = admin_only_pool
        refused(
            strict,
            lambda: idp.sign_up(ClientId=client_id, Username=new_email("closed"), Password=NEW),
            "NotAuthorizedException",
        )

    def test_a_closed_pool_is_forbidden_not_an_invalid_token(
        self, cognito, database_url, strict_url, admin_only_pool
    ):
        pool_id, client_id = admin_only_pool
        settings = make_settings(
            cognito,
            database_url,
            cognito_endpoint_url=strict_url,
            cognito_user_pool_id=pool_id,
            cognito_client_id=client_id,
            cognito_client_secret=None,
        )
        body = assert_problem(_sign_up(settings), 403, "forbidden")
        assert "administrator or by invitation" in body["detail"]

    def test_a_wrong_client_secret_is_the_deployments_fault(
        self, cognito, database_url, strict_url
    ):
        settings = make_settings(
            cognito,
            database_url,
            cognito_endpoint_url=strict_url,
            cognito_client_secret="not-the-secret-" + "x" * 30,
        )
        assert_problem(_sign_up(settings), 502, "upstream_error")
