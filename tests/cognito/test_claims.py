"""Claim types in validly signed tokens, a configurable issuer, and logged refusals
(issue 10 item 6; issue 11 item 11). Tokens are signed with moto's published key, which the
app's verifier trusts (as in test_tokens.py)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.config import Settings
from authsvc.main import create_app
from tests.cognito import test_tokens
from tests.cognito.test_tokens import mint, refused, session
from tests.conftest import make_settings

# The fixtures of test_tokens.py: a valid token's claims for the app's pool and client.
app_settings = test_tokens.app_settings
claims = test_tokens.claims


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("exp", 1e20),
        ("exp", 10**20),
        ("exp", "9999999999"),
        ("exp", True),
        ("iat", 1e20),
        ("iat", "now"),
        ("iat", -5),
        ("cognito:groups", "admin"),
        ("cognito:groups", [1, 2]),
        ("cognito:groups", {"admin": True}),
        ("sub", 12345),
        ("sub", ""),
        ("username", ["admin"]),
        ("scope", ["aws.cognito.signin.user.admin"]),
        ("jti", 7),
    ],
)
def test_odd_claim_in_a_signed_token_is_401(client, claims, name, value) -> None:
    # e.g. exp=1e20 used to overflow datetime (500); groups as a string became characters.
    refused(client, mint({**claims, name: value}))


def test_groups_as_a_list_of_strings_are_accepted(client, claims) -> None:
    response = session(client, mint({**claims, "cognito:groups": ["admin", "staff"]}))
    assert response.status_code == 200, response.text
    assert response.json()["groups"] == ["admin", "staff"]


def test_a_refusal_is_logged_with_its_cause_never_the_token(client, claims, caplog) -> None:
    token = mint({**claims, "iss": "https://issuer.example/other"})
    with caplog.at_level(logging.INFO, logger="authsvc.tokens"):
        refused(client, token)
    reasons = [r.getMessage() for r in caplog.records if r.name == "authsvc.tokens"]
    assert "token refused: InvalidIssuerError" in reasons
    assert all(
        token not in r.getMessage() and token[:40] not in r.getMessage() for r in caplog.records
    )


def test_an_expired_token_refusal_is_logged_too(client, claims, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="authsvc.tokens"):
        refused(client, mint({**claims, "exp": claims["iat"] - 10}))
    assert "token refused: ExpiredSignatureError" in [r.getMessage() for r in caplog.records]


class TestConfigurableIssuer:
    ISSUER = "http://127.0.0.1:9229/local_pool"

    @pytest.fixture
    def issuer_app(self, cognito, database_url, app_settings) -> Any:
        settings = make_settings(
            cognito,
            database_url,
            cognito_issuer=self.ISSUER,
            # The emulator serves its keys elsewhere: an explicit JWKS URL wins.
            cognito_jwks_url=app_settings.jwks_url,
        )
        with TestClient(create_app(settings), raise_server_exceptions=False) as client:
            yield client

    def test_tokens_of_the_configured_issuer_are_accepted(self, issuer_app, claims) -> None:
        response = session(issuer_app, mint({**claims, "iss": self.ISSUER}))
        assert response.status_code == 200, response.text
        # ... and the AWS form is now another issuer.
        refused(issuer_app, mint(claims))

    def test_settings(self) -> None:
        base = {"cognito_user_pool_id": "eu-west-1_Abc", "cognito_client_id": "c", "dev_mode": True}
        default = Settings(**base)
        assert default.issuer == "https://cognito-idp.us-east-1.amazonaws.com/eu-west-1_Abc"
        assert default.jwks_url == default.issuer + "/.well-known/jwks.json"
        local = Settings(**base, cognito_issuer=self.ISSUER + "/")
        assert local.issuer == self.ISSUER
        assert local.jwks_url == self.ISSUER + "/.well-known/jwks.json"
        explicit = Settings(**base, cognito_issuer=self.ISSUER, cognito_jwks_url="http://k/j")
        assert explicit.jwks_url == "http://k/j"
        with pytest.raises(ValueError, match="AUTHSVC_COGNITO_ISSUER"):
            Settings(**base, cognito_issuer="cognito-idp.local/pool")
