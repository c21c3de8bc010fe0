"""Deployment files (template, image, compose) and provisioning the emulator from the template."""

from __future__ import annotations

import copy
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from authsvc.dev.emulator import (
    EmbeddedCognito,
    ProvisionedPool,
    TemplateError,
    default_template_path,
    load_template,
    provision,
)

REPO = Path(__file__).resolve().parents[1]
TEMPLATE = REPO / "infra" / "template.yaml"


def run_tool(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run a linter installed in the same environment as the tests (no skipping if absent)."""
    executable = Path(sys.executable).parent / name
    assert executable.is_file(), f"{name} is not installed next to {sys.executable}"
    return subprocess.run(
        [str(executable), *args], cwd=REPO, capture_output=True, text=True, timeout=300
    )


class TestTemplate:
    def test_cfn_lint_reports_nothing(self) -> None:
        result = run_tool("cfn-lint", str(TEMPLATE.relative_to(REPO)))
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == ""

    def test_short_tags_load_as_intrinsic_functions(self) -> None:
        template = load_template(TEMPLATE)
        resources = template["Resources"]
        assert resources["UserPoolClient"]["Properties"]["UserPoolId"] == {"Ref": "UserPool"}
        assert template["Outputs"]["Issuer"]["Value"] == {
            "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"
        }
        (cognito_policy, _) = resources["TaskRole"]["Properties"]["Policies"]
        (statement,) = cognito_policy["PolicyDocument"]["Statement"]
        assert statement["Resource"] == {"Fn::GetAtt": ["UserPool", "Arn"]}

    def test_default_template_path_is_the_repository_template(self) -> None:
        assert default_template_path().resolve() == TEMPLATE.resolve()

    def test_service_gets_pool_and_client_from_the_stack(self) -> None:
        resources = load_template(TEMPLATE)["Resources"]
        (container,) = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert environment["AUTHSVC_COGNITO_REGION"] == {"Ref": "AWS::Region"}
        assert environment["AUTHSVC_COGNITO_USER_POOL_ID"] == {"Ref": "UserPool"}
        assert environment["AUTHSVC_COGNITO_CLIENT_ID"] == {"Ref": "UserPoolClient"}
        # (the directory's secrets are added only with DirectorySignIn: tests/directory)
        assert {s["Name"] for s in container["Secrets"] if "Name" in s} == {
            "AUTHSVC_DATABASE_URL",
            "AUTHSVC_SECRET_KEY",
            "AUTHSVC_COGNITO_CLIENT_SECRET",
        }
        # The confidential client's secret comes from Secrets Manager, never plain text.
        secret = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        assert secret["AUTHSVC_COGNITO_CLIENT_SECRET"] == {"Ref": "ClientSecretSecret"}
        assert resources["ClientSecretSecret"]["Properties"]["SecretString"] == {
            "Fn::GetAtt": ["UserPoolClient", "ClientSecret"]
        }
        assert resources["UserPoolClient"]["Properties"]["GenerateSecret"] is True
        assert resources["TargetGroup"]["Properties"]["HealthCheckPath"] == "/healthz"
        assert resources["Service"]["Condition"] == "DeployService"


class TestDockerfile:
    def test_hadolint_reports_nothing(self) -> None:
        result = run_tool("hadolint", "--no-color", "Dockerfile")
        assert result.returncode == 0, result.stdout + result.stderr
        assert result.stdout.strip() == ""


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


class TestCompose:
    """Structure only: no Docker engine or compose plugin here to run `docker compose config`."""

    def test_names_the_services(self, compose: dict[str, Any]) -> None:
        assert set(compose["services"]) == {"authsvc", "migrate", "postgres", "redis"}

    def test_authsvc_waits_for_healthy_dependencies_and_migrations(
        self, compose: dict[str, Any]
    ) -> None:
        services = compose["services"]
        assert services["authsvc"]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
        }
        assert services["migrate"]["command"] == ["authsvc", "migrate"]
        assert "healthcheck" in services["postgres"]
        assert "healthcheck" in services["redis"]

    def test_authsvc_points_at_the_compose_database_and_redis(
        self, compose: dict[str, Any]
    ) -> None:
        environment = compose["services"]["authsvc"]["environment"]
        assert environment["AUTHSVC_DATABASE_URL"] == (
            "postgresql+psycopg://postgres:postgres@postgres:5432/authsvc"
        )
        assert environment["AUTHSVC_REDIS_URL"] == "redis://redis:6379/0"
        assert compose["services"]["migrate"]["environment"] == environment


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmbeddedCognito]:
    cognito = EmbeddedCognito()
    cognito.start()
    yield cognito
    cognito.stop()


@pytest.fixture(scope="module")
def cognito(emulator: EmbeddedCognito) -> Any:
    return emulator.client()


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE)


@pytest.fixture(scope="module")
def pool(cognito: Any, template: dict[str, Any]) -> ProvisionedPool:
    return provision(cognito, template)


class TestEmbeddedCognito:
    def test_start_returns_a_loopback_endpoint(self, emulator: EmbeddedCognito) -> None:
        assert emulator.endpoint_url.startswith("http://127.0.0.1:")
        assert emulator.port > 0

    def test_endpoint_url_before_start_is_an_error(self) -> None:
        with pytest.raises(RuntimeError):
            _ = EmbeddedCognito().endpoint_url


class TestProvision:
    def test_pool_signs_in_with_email(self, cognito: Any, pool: ProvisionedPool) -> None:
        described = cognito.describe_user_pool(UserPoolId=pool.user_pool_id)["UserPool"]
        assert described["Name"] == "authsvc"
        assert described["UsernameAttributes"] == ["email"]
        assert described["AutoVerifiedAttributes"] == ["email"]
        assert described["UsernameConfiguration"] == {"CaseSensitive": False}

    def test_schema_matches_the_template(self, cognito: Any, pool: ProvisionedPool) -> None:
        described = cognito.describe_user_pool(UserPoolId=pool.user_pool_id)["UserPool"]
        schema = {a["Name"]: a for a in described["SchemaAttributes"]}
        assert schema["email"]["Required"] is True
        assert schema["email"]["Mutable"] is False
        assert schema["family_name"]["Required"] is True
        assert schema["given_name"]["Required"] is False
        assert schema["custom:test_attribute1"]["Mutable"] is True
        # the standard attributes every Cognito pool has are there too
        assert schema["sub"]["Mutable"] is False
        assert schema["email_verified"]["AttributeDataType"] == "Boolean"

    def test_password_policy_matches_the_template(
        self, cognito: Any, pool: ProvisionedPool, template: dict[str, Any]
    ) -> None:
        expected = template["Resources"]["UserPool"]["Properties"]["Policies"]["PasswordPolicy"]
        described = cognito.describe_user_pool(UserPoolId=pool.user_pool_id)["UserPool"]
        policy = described["Policies"]["PasswordPolicy"]
        assert {key: policy[key] for key in expected} == expected

    def test_totp_mfa_is_optional(self, cognito: Any, pool: ProvisionedPool) -> None:
        mfa = cognito.get_user_pool_mfa_config(UserPoolId=pool.user_pool_id)
        assert mfa["MfaConfiguration"] == "OPTIONAL"
        assert mfa["SoftwareTokenMfaConfiguration"] == {"Enabled": True}

    def test_app_client_matches_the_template(self, cognito: Any, pool: ProvisionedPool) -> None:
        described = cognito.describe_user_pool_client(
            UserPoolId=pool.user_pool_id, ClientId=pool.client_id
        )["UserPoolClient"]
        assert described["ClientName"] == "authsvc"
        assert {"ALLOW_USER_PASSWORD_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"} <= set(
            described["ExplicitAuthFlows"]
        )
        assert described["PreventUserExistenceErrors"] == "ENABLED"
        assert described["EnableTokenRevocation"] is True
        assert "custom:test_attribute1" in described["WriteAttributes"]
        # Confidential client (issue 10): dev mode and the tests exercise SECRET_HASH.
        assert described["ClientSecret"]
        assert pool.client_secret == described["ClientSecret"]

    def test_admin_group_exists(self, cognito: Any, pool: ProvisionedPool) -> None:
        groups = cognito.list_groups(UserPoolId=pool.user_pool_id)["Groups"]
        assert "admin" in [g["GroupName"] for g in groups]
        assert pool.groups == ("admin",)

    def test_provisioning_again_reuses_the_pool(
        self, cognito: Any, pool: ProvisionedPool, template: dict[str, Any]
    ) -> None:
        again = provision(cognito, template)
        assert again == pool
        pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
        assert [p["Id"] for p in pools if p["Name"] == "authsvc"] == [pool.user_pool_id]
        clients = cognito.list_user_pool_clients(UserPoolId=pool.user_pool_id)
        # (tests/directory adds the template's DirectoryClient to the same in-process pool)
        names = [c["ClientName"] for c in clients["UserPoolClients"]]
        assert names.count("authsvc") == 1

    def test_parameters_and_properties_come_from_the_template(
        self, cognito: Any, template: dict[str, Any]
    ) -> None:
        changed = copy.deepcopy(template)
        pool_properties = changed["Resources"]["UserPool"]["Properties"]
        pool_properties["Policies"]["PasswordPolicy"]["MinimumLength"] = 12
        changed["Resources"]["UserPoolClient"]["Properties"]["GenerateSecret"] = True

        created = provision(
            cognito,
            changed,
            parameters={"PoolName": "authsvc-infra-test", "AdminGroupName": "operators"},
        )

        described = cognito.describe_user_pool(UserPoolId=created.user_pool_id)["UserPool"]
        assert described["Name"] == "authsvc-infra-test"
        assert described["Policies"]["PasswordPolicy"]["MinimumLength"] == 12
        assert created.groups == ("operators",)
        assert created.client_secret

    def test_unknown_parameter_is_refused(self, cognito: Any, template: dict[str, Any]) -> None:
        with pytest.raises(TemplateError, match="NoSuchParameter"):
            provision(cognito, template, parameters={"NoSuchParameter": "x"})

    def test_unresolvable_intrinsic_is_refused(
        self, cognito: Any, template: dict[str, Any]
    ) -> None:
        changed = copy.deepcopy(template)
        group = changed["Resources"]["AdminGroup"]["Properties"]
        group["Description"] = {"Fn::ImportValue": "elsewhere"}
        with pytest.raises(TemplateError, match="AdminGroup.*ImportValue"):
            provision(cognito, changed, parameters={"PoolName": "authsvc-infra-unresolved"})
