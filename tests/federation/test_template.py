"""The template's federation block: providers by parameter, each mapped and with its secret
from Secrets Manager, the client's OAuth settings, the identity pool; and settings that
match it (cfn-lint runs over the whole template in tests/test_infra.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authsvc.config import Settings
from authsvc.dev.emulator import load_template
from authsvc.federation.providers import SOCIAL, parse_provider

TEMPLATE = Path(__file__).resolve().parents[2] / "infra" / "template.yaml"
IDP_TYPE = "AWS::Cognito::UserPoolIdentityProvider"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


def providers(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == IDP_TYPE}


def test_each_provider_is_switched_on_by_a_parameter(template: dict[str, Any]) -> None:
    found = providers(template)
    kinds = {r["Properties"]["ProviderType"] for r in found.values()}
    assert kinds == {"Google", "Facebook", "LoginWithAmazon", "SignInWithApple", "OIDC", "SAML"}
    for logical_id, resource in found.items():
        assert resource["Condition"] in template["Conditions"], logical_id


def test_social_names_are_what_authsvc_lists(template: dict[str, Any]) -> None:
    social = {
        r["Properties"]["ProviderName"]
        for r in providers(template).values()
        if r["Properties"]["ProviderType"] not in ("OIDC", "SAML")
    }
    assert social == set(SOCIAL)
    for name in social:
        assert parse_provider(name).name == name


def test_attributes_are_mapped(template: dict[str, Any]) -> None:
    for logical_id, resource in providers(template).items():
        mapping = resource["Properties"]["AttributeMapping"]
        # email and the pool's required family_name come from every provider.
        assert {"email", "family_name"} <= set(mapping), logical_id


def test_secrets_come_from_secrets_manager(template: dict[str, Any]) -> None:
    for logical_id, resource in providers(template).items():
        details = resource["Properties"]["ProviderDetails"]
        for key in ("client_secret", "private_key"):
            if key in details:
                assert "{{resolve:secretsmanager:" in str(details[key]), logical_id


def test_client_uses_the_code_flow_only(template: dict[str, Any]) -> None:
    props = template["Resources"]["UserPoolClient"]["Properties"]
    assert props["AllowedOAuthFlows"]["Fn::If"][1] == ["code"]
    assert props["AllowedOAuthScopes"]["Fn::If"][1] == [
        "openid",
        "email",
        "profile",
        "aws.cognito.signin.user.admin",  # else Cognito refuses these tokens on GetUser (/v1/me)
    ]
    assert props["CallbackURLs"]["Fn::If"][1] == {"Ref": "FederationCallbackUrls"}


def test_identity_pool_bound_to_the_user_pool(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    pool = resources["IdentityPool"]["Properties"]
    (provider,) = pool["CognitoIdentityProviders"]
    assert provider["ClientId"] == {"Ref": "UserPoolClient"}
    assert provider["ProviderName"] == {"Fn::GetAtt": ["UserPool", "ProviderName"]}
    roles = resources["IdentityPoolRoles"]["Properties"]["Roles"]
    assert roles["authenticated"] == {"Fn::GetAtt": ["IdentityAuthenticatedRole", "Arn"]}
    assert resources["IdentityAuthenticatedRole"]["Properties"]["ManagedPolicyArns"] == {
        "Ref": "AuthenticatedRolePolicyArns"
    }
    assert resources["IdentityGuestRole"]["Condition"] == "GuestEnabled"


def test_domain(template: dict[str, Any]) -> None:
    domain = template["Resources"]["UserPoolDomain"]
    assert domain["Properties"]["Domain"] == {"Ref": "HostedUiDomainPrefix"}


BASE = {"cognito_user_pool_id": "us-east-1_abc", "cognito_client_id": "c", "dev_mode": True}


class TestSettings:
    def test_providers_and_uris_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("AUTHSVC_FEDERATION_PROVIDERS", "Google, Corp:saml")
        monkeypatch.setenv("AUTHSVC_FEDERATION_REDIRECT_URIS", "https://a.example/,https://b/")
        monkeypatch.setenv(
            "AUTHSVC_FEDERATION_DOMAIN_URL", "https://x.auth.us-east-1.amazoncognito.com/"
        )
        monkeypatch.setenv(
            "AUTHSVC_FEDERATION_CALLBACK_URL", "https://api/v1/auth/federation/callback"
        )
        settings = Settings(**BASE)  # type: ignore[arg-type]
        assert settings.federation_providers == ["Google", "Corp:saml"]
        assert settings.federation_redirect_uris == ["https://a.example/", "https://b/"]
        assert settings.federation_domain_url == "https://x.auth.us-east-1.amazoncognito.com"

    @pytest.mark.parametrize(
        ("entry", "message"),
        [("MySpace", "give the kind"), ("Corp:ldap", "oidc or saml"), ("Google:oidc", "social")],
    )
    def test_bad_provider_names_the_entry(self, entry: str, message: str) -> None:
        with pytest.raises(ValueError, match=message):
            Settings(**BASE, federation_providers=[entry])  # type: ignore[arg-type]

    def test_providers_need_the_hosted_ui(self) -> None:
        with pytest.raises(ValueError, match="AUTHSVC_FEDERATION_DOMAIN_URL"):
            Settings(**BASE, federation_providers=["Google"])  # type: ignore[arg-type]

    def test_empty_urls_mean_off(self) -> None:
        settings = Settings(**BASE, federation_domain_url="", federation_callback_url="")  # type: ignore[arg-type]
        assert settings.federation_domain_url is None
