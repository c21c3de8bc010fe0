"""Deployment files (template, image, compose) and provisioning the emulator from the template."""

from __future__ import annotations

import copy
import fnmatch
import importlib
import json
import os
import re
import shlex
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
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
# The Compose Specification's schema (tests/vendor/README says where it comes from).
COMPOSE_SCHEMA = json.loads((REPO / "tests" / "vendor" / "compose-spec.json").read_text())
# Its $schema names draft-07 without the trailing "#" jsonschema looks for: say it here.
COMPOSE_VALIDATOR = jsonschema.Draft7Validator(COMPOSE_SCHEMA)


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
        (cognito_policy, *_) = resources["TaskRole"]["Properties"]["Policies"]
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
            "AUTHSVC_METRICS_TOKEN",
            "AUTHSVC_COGNITO_CLIENT_SECRET",
        }
        # The confidential client's secret comes from Secrets Manager, never plain text.
        secret = {s["Name"]: s["ValueFrom"] for s in container["Secrets"] if "Name" in s}
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
    """No Docker engine or compose plugin here to run `docker compose config` (`make test`
    runs it where there is one): the file is validated against the Compose Specification's
    schema, and its structure checked."""

    def test_matches_the_compose_specification(self, compose: dict[str, Any]) -> None:
        COMPOSE_VALIDATOR.validate(compose)

    def test_the_schema_check_catches_mistakes(self, compose: dict[str, Any]) -> None:
        broken = copy.deepcopy(compose)
        broken["services"]["authsvc"]["depends_on"]["migrate"]["condition"] = "service_done"
        with pytest.raises(jsonschema.ValidationError):
            COMPOSE_VALIDATOR.validate(broken)
        broken = copy.deepcopy(compose)
        broken["services"]["moto"]["profile"] = ["local"]  # a typo for `profiles`
        with pytest.raises(jsonschema.ValidationError):
            COMPOSE_VALIDATOR.validate(broken)

    def test_names_the_services(self, compose: dict[str, Any]) -> None:
        services = compose["services"]
        assert set(services) == {
            "authsvc",
            "migrate",
            "postgres",
            "redis",
            "moto",
            "cognito-setup",
        }
        # `docker compose up` starts authsvc and what it needs; moto only with --profile local
        default = {name for name, service in services.items() if "profiles" not in service}
        assert default == {"authsvc", "migrate", "postgres", "redis"}
        assert services["moto"]["profiles"] == ["local"]
        assert services["cognito-setup"]["profiles"] == ["local"]

    def test_secret_key_is_required_with_a_clear_message(self, compose: dict[str, Any]) -> None:
        environment = compose["x-authsvc-environment"]
        value = environment["AUTHSVC_SECRET_KEY"]
        # ${VAR:?message}: compose stops with the message when it is unset or empty
        assert value.startswith("${AUTHSVC_SECRET_KEY:?")
        assert "16+ random characters" in value and "openssl rand" in value
        assert compose["services"]["authsvc"]["environment"] is environment
        assert compose["services"]["migrate"]["environment"] is environment

    def test_every_variable_is_documented(self) -> None:
        text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
        header = "".join(line for line in text.splitlines(True) if line.startswith("#"))
        body = "".join(line for line in text.splitlines(True) if not line.startswith("#"))
        # ${NAME}, ${NAME:-default}, ${NAME:?message}; $${...} is a literal for the shell
        used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", body))
        assert "AUTHSVC_SECRET_KEY" in used and "AUTHSVC_COGNITO_USER_POOL_ID" in used
        undocumented = sorted(name for name in used if not re.search(rf"\b{name}\b", header))
        assert undocumented == []

    def test_local_profile_provisions_moto_from_the_template(self, compose: dict[str, Any]) -> None:
        services = compose["services"]
        setup = services["cognito-setup"]
        assert setup["command"][:3] == ["python", "-m", "authsvc.dev.compose"]
        assert "http://moto:5000" in setup["command"]
        assert setup["depends_on"] == {"moto": {"condition": "service_healthy"}}
        assert "./infra/template.yaml:/app/infra/template.yaml:ro" in setup["volumes"]
        assert setup["environment"]["AUTHSVC_TEMPLATE_PATH"] == "/app/infra/template.yaml"
        env_file = setup["command"][setup["command"].index("--env-file") + 1]
        # authsvc reads what cognito-setup wrote, and waits for it only under the profile
        authsvc = services["authsvc"]
        assert authsvc["depends_on"]["cognito-setup"] == {
            "condition": "service_completed_successfully",
            "required": False,
        }
        assert env_file in authsvc["command"][-1]
        assert "exec authsvc serve --host 0.0.0.0 --port 8000" in authsvc["command"][-1]
        (mount,) = authsvc["volumes"]
        assert mount.startswith("cognito-local:") and env_file.startswith(mount.split(":")[1])
        assert services["moto"]["image"].startswith("motoserver/moto:")
        assert "healthcheck" in services["moto"]

    def test_authsvc_waits_for_healthy_dependencies_and_migrations(
        self, compose: dict[str, Any]
    ) -> None:
        services = compose["services"]
        assert services["authsvc"]["depends_on"] == {
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
            "migrate": {"condition": "service_completed_successfully"},
            "cognito-setup": {"condition": "service_completed_successfully", "required": False},
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


# ------------------------------------------------------------------ the production template

SERVICE = {
    "ContainerImage": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/authsvc:1.0.0",
    "VpcId": "vpc-0123",
    "SubnetIds": "subnet-a,subnet-b",
    "CertificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/abc",
    "PublicAppUrl": "https://app.example.com",
    "EmailFromAddress": "no-reply@example.com",
}
LAMBDA = {
    **{k: v for k, v in SERVICE.items() if k not in ("ContainerImage", "CertificateArn")},
    "LambdaCodeS3Bucket": "artifacts-bucket",
    "LambdaCodeS3Key": "authsvc/lambda-1.0.0.zip",
}
EXISTING = {
    "DatabaseUrlSecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-url",
    "SecretKeySecretArn": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:key",
    "RedisUrl": "rediss://cache.internal:6379/0",
}


class Stack:
    """The template as CloudFormation would evaluate it for some parameter values: which
    conditions hold, which resources exist, what an If/Ref/Join comes to, which rules fail."""

    def __init__(self, template: dict[str, Any], **parameters: str) -> None:
        self.template = template
        declared = template["Parameters"]
        unknown = set(parameters) - set(declared)
        assert not unknown, f"not template parameters: {unknown}"
        self.parameters = {
            name: str(parameters.get(name, spec.get("Default", "")))
            for name, spec in declared.items()
        }

    def parameter(self, name: str) -> Any:
        value = self.parameters[name]
        if self.template["Parameters"][name]["Type"] == "CommaDelimitedList":
            return value.split(",")
        return value

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def value(self, node: Any) -> Any:
        """Evaluate the intrinsics; a Ref to a resource becomes "ref:Name"."""
        if isinstance(node, list):
            items = (self.value(item) for item in node)
            return [item for item in items if item != "ref:AWS::NoValue"]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            if key == "Ref" and isinstance(arg, str):
                if arg in self.template["Parameters"]:
                    return self.parameter(arg)
                return f"ref:{arg}"
            if key == "Condition" and isinstance(arg, str):
                return self.condition(arg)
            if key == "Fn::Equals":
                return self.value(arg[0]) == self.value(arg[1])
            if key == "Fn::Not":
                return not self.value(arg[0])
            if key == "Fn::And":
                return all(self.value(a) for a in arg)
            if key == "Fn::Or":
                return any(self.value(a) for a in arg)
            if key == "Fn::If":
                return self.value(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Join":
                items = self.value(arg[1])
                return arg[0].join(items if isinstance(items, list) else [items])
        return {k: self.value(v) for k, v in node.items()}

    def active(self) -> set[str]:
        return {
            name
            for name, resource in self.template["Resources"].items()
            if "Condition" not in resource or self.condition(resource["Condition"])
        }

    def failed_rules(self) -> set[str]:
        failed = set()
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.value(rule["RuleCondition"]):
                continue
            if not all(self.value(a["Assert"]) for a in rule["Assertions"]):
                failed.add(name)
        return failed

    def container(self) -> dict[str, Any]:
        definition = self.template["Resources"]["TaskDefinition"]["Properties"]
        (container,) = self.value(definition["ContainerDefinitions"])
        return container


SERVICE_ONLY = {"Cluster", "Service", "LoadBalancer", "HttpsListener", "ApiListenerRule"}
DATA = {"Database", "DatabaseUrlSecret", "DatabasePasswordSecret", "Redis", "SecretKeySecret"}
SERVERLESS = {"Function", "HttpApi", "HttpApiRoute", "HttpApiStage", "MaintenanceSchedule"}


class TestProductionTemplate:
    def test_pool_only_by_default(self, template: dict[str, Any]) -> None:
        stack = Stack(template)
        assert {"UserPool", "UserPoolClient", "AdminGroup"} <= stack.active()
        assert stack.active() & (SERVICE_ONLY | DATA | SERVERLESS | {"TaskRole"}) == set()
        assert stack.failed_rules() == set()

    def test_service_creates_database_redis_and_secrets(self, template: dict[str, Any]) -> None:
        stack = Stack(template, **SERVICE)
        assert stack.failed_rules() == set()
        active = stack.active()
        assert active >= SERVICE_ONLY | DATA
        assert active & SERVERLESS == set()
        container = stack.container()
        secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        assert secrets["AUTHSVC_DATABASE_URL"] == "ref:DatabaseUrlSecret"
        assert secrets["AUTHSVC_SECRET_KEY"] == "ref:SecretKeySecret"
        assert secrets["AUTHSVC_METRICS_TOKEN"] == "ref:MetricsTokenSecret"
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert environment["AUTHSVC_REDIS_URL"] == {
            "Fn::Sub": "rediss://${Redis.PrimaryEndPoint.Address}:${Redis.PrimaryEndPoint.Port}/0"
        }
        # the URL secret is built from the generated password and the instance's endpoint
        url = template["Resources"]["DatabaseUrlSecret"]["Properties"]["SecretString"]["Fn::Sub"]
        assert url.startswith("postgresql://authsvc:{{resolve:secretsmanager:${DatabasePassword")
        assert "${Database.Endpoint.Address}:${Database.Endpoint.Port}/authsvc" in url
        database = template["Resources"]["Database"]
        assert database["DeletionPolicy"] == "Snapshot"
        assert database["Properties"]["PubliclyAccessible"] is False
        assert database["Properties"]["StorageEncrypted"] is True
        redis = template["Resources"]["Redis"]["Properties"]
        assert redis["TransitEncryptionEnabled"] is True

    def test_existing_endpoints_create_nothing(self, template: dict[str, Any]) -> None:
        stack = Stack(template, **SERVICE, **EXISTING)
        assert stack.active() & DATA == set()
        container = stack.container()
        secrets = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}
        assert secrets["AUTHSVC_DATABASE_URL"] == EXISTING["DatabaseUrlSecretArn"]
        assert secrets["AUTHSVC_SECRET_KEY"] == EXISTING["SecretKeySecretArn"]
        environment = {e["Name"]: e["Value"] for e in container["Environment"]}
        assert environment["AUTHSVC_REDIS_URL"] == EXISTING["RedisUrl"]
        # the execution role may read exactly the secrets the task gets
        role = stack.value(template["Resources"]["ExecutionRole"]["Properties"])
        (statement,) = role["Policies"][0]["PolicyDocument"]["Statement"]
        assert sorted(statement["Resource"]) == sorted(secrets.values())

    def test_without_redis_the_service_must_stay_at_one_task(
        self, template: dict[str, Any]
    ) -> None:
        stack = Stack(template, **SERVICE, CreateRedis="false")
        assert "Redis" not in stack.active()
        assert stack.failed_rules() == {"PerTaskCountersMeanOneTask"}
        single = Stack(template, **SERVICE, CreateRedis="false", DesiredCount="1", MaxCount="1")
        assert single.failed_rules() == set()
        environment = {e["Name"]: e["Value"] for e in single.container()["Environment"]}
        assert environment["AUTHSVC_REDIS_URL"] == ""

    def test_listener_forwards_only_the_api(self, template: dict[str, Any]) -> None:
        for docs, reachable in (("false", {"/v1/auth/sign-in"}), ("true", {"/docs", "/redoc"})):
            stack = Stack(template, **SERVICE, DocsEnabled=docs)
            listener = stack.value(template["Resources"]["HttpsListener"]["Properties"])
            (default,) = listener["DefaultActions"]
            assert default["Type"] == "fixed-response"
            assert default["FixedResponseConfig"]["StatusCode"] == "404"
            assert json.loads(default["FixedResponseConfig"]["MessageBody"])["code"] == "not_found"
            patterns = []
            for name in stack.active():
                resource = template["Resources"][name]
                if resource["Type"] != "AWS::ElasticLoadBalancingV2::ListenerRule":
                    continue
                properties = stack.value(resource["Properties"])
                assert properties["Actions"] == [
                    {"Type": "forward", "TargetGroupArn": "ref:TargetGroup"}
                ]
                for condition in properties["Conditions"]:
                    assert condition["Field"] == "path-pattern"
                    patterns += condition["PathPatternConfig"]["Values"]

            def forwarded(path: str, patterns: list[str] = patterns) -> bool:
                return any(fnmatch.fnmatchcase(path, p) for p in patterns)

            for path in ("/metrics", "/readyz", "/healthz", "/dev/outbox", "/", "/v2/x"):
                assert not forwarded(path), path
            assert all(forwarded(path) for path in reachable)
            assert forwarded("/openapi.json") is (docs == "true")
            assert forwarded("/v1/admin/users")
        # plain HTTP is only ever redirected
        http = template["Resources"]["HttpListener"]["Properties"]
        assert http["DefaultActions"] == [
            {
                "Type": "redirect",
                "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"},
            }
        ]
        # the service is created only once the target group is reachable through a rule
        assert "ApiListenerRule" in template["Resources"]["Service"]["DependsOn"]

    def test_metrics_scrapers_reach_the_tasks_only_when_named(
        self, template: dict[str, Any]
    ) -> None:
        assert "MetricsScrapeIngress" not in Stack(template, **SERVICE).active()
        stack = Stack(template, **SERVICE, MetricsSourceCidr="10.1.0.0/16")
        assert "MetricsScrapeIngress" in stack.active()
        ingress = template["Resources"]["MetricsScrapeIngress"]["Properties"]
        assert (ingress["FromPort"], ingress["ToPort"]) == (8000, 8000)

    def test_target_tracking_autoscaling(self, template: dict[str, Any]) -> None:
        resources = template["Resources"]
        target = resources["ServiceScalableTarget"]["Properties"]
        assert target["ScalableDimension"] == "ecs:service:DesiredCount"
        assert target["ResourceId"] == {"Fn::Sub": "service/${Cluster}/${Service.Name}"}
        assert target["MinCapacity"] == {"Ref": "DesiredCount"}
        assert target["MaxCapacity"] == {"Ref": "MaxCount"}
        policy = resources["ServiceCpuScaling"]["Properties"]
        assert policy["PolicyType"] == "TargetTrackingScaling"
        assert policy["ScalingTargetId"] == {"Ref": "ServiceScalableTarget"}
        tracking = policy["TargetTrackingScalingPolicyConfiguration"]
        assert tracking["PredefinedMetricSpecification"] == {
            "PredefinedMetricType": "ECSServiceAverageCPUUtilization"
        }
        assert tracking["TargetValue"] == {"Ref": "CpuTargetPercent"}
        assert {"ServiceScalableTarget", "ServiceCpuScaling"} <= Stack(template, **SERVICE).active()

    def test_ses_identity_sends_cognito_and_invitation_email(
        self, template: dict[str, Any]
    ) -> None:
        default = Stack(template, **SERVICE)
        pool = default.value(template["Resources"]["UserPool"]["Properties"])
        assert pool["EmailConfiguration"] == "ref:AWS::NoValue"
        stack = Stack(template, **SERVICE, SesIdentity="example.com")
        pool = stack.value(template["Resources"]["UserPool"]["Properties"])
        assert pool["EmailConfiguration"]["EmailSendingAccount"] == "DEVELOPER"
        arn = "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SesIdentity}"
        assert pool["EmailConfiguration"]["SourceArn"] == {"Fn::Sub": arn}
        assert pool["EmailConfiguration"]["From"] == "no-reply@example.com"
        role = stack.value(template["Resources"]["TaskRole"]["Properties"])
        (send,) = next(p for p in role["Policies"] if p["PolicyName"] == "send-email")[
            "PolicyDocument"
        ]["Statement"]
        assert send["Resource"] == {"Fn::Sub": arn}
        assert send["Condition"] == {"StringEquals": {"ses:FromAddress": "no-reply@example.com"}}
        environment = {e["Name"]: e["Value"] for e in stack.container()["Environment"]}
        assert environment["AUTHSVC_EMAIL_FROM"] == "no-reply@example.com"
        assert environment["AUTHSVC_EMAIL_BACKEND"] == "ses"


class TestLambdaVariant:
    def test_lambda_replaces_the_ecs_service(self, template: dict[str, Any]) -> None:
        stack = Stack(template, **LAMBDA)
        assert stack.failed_rules() == set()
        active = stack.active()
        assert SERVERLESS | DATA | {"TaskRole", "AppSecurityGroup"} <= active
        assert active & SERVICE_ONLY == set()
        role = stack.value(template["Resources"]["TaskRole"]["Properties"])
        assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
            "Service": "lambda.amazonaws.com"
        }
        assert "read-secrets" in [p["PolicyName"] for p in role["Policies"] if isinstance(p, dict)]

    def test_not_both_runtimes(self, template: dict[str, Any]) -> None:
        both = Stack(template, **LAMBDA, ContainerImage=SERVICE["ContainerImage"])
        assert "OneRuntime" in both.failed_rules()
        no_key = Stack(template, **{**LAMBDA, "LambdaCodeS3Key": ""})
        assert "LambdaParameters" in no_key.failed_rules()

    def test_function_runs_the_handler_with_its_secrets(self, template: dict[str, Any]) -> None:
        stack = Stack(template, **LAMBDA, **EXISTING)
        function = stack.value(template["Resources"]["Function"]["Properties"])
        module, _, name = function["Handler"].rpartition(".")
        assert callable(getattr(importlib.import_module(module), name))
        variables = function["Environment"]["Variables"]
        assert variables["AUTHSVC_DATABASE_URL_SECRET_ARN"] == EXISTING["DatabaseUrlSecretArn"]
        assert variables["AUTHSVC_SECRET_KEY_SECRET_ARN"] == EXISTING["SecretKeySecretArn"]
        assert variables["AUTHSVC_REDIS_URL"] == EXISTING["RedisUrl"]
        assert variables["AUTHSVC_COGNITO_USER_POOL_ID"] == "ref:UserPool"
        # what the function reads at cold start, it may read
        role = stack.value(template["Resources"]["TaskRole"]["Properties"])
        (read,) = next(
            p for p in role["Policies"] if isinstance(p, dict) and p["PolicyName"] == "read-secrets"
        )["PolicyDocument"]["Statement"]
        arns = {v for k, v in variables.items() if k.endswith("_SECRET_ARN")}
        assert arns == set(read["Resource"])

    def test_http_api_routes_only_the_api(self, template: dict[str, Any]) -> None:
        def routes(docs: str) -> set[str]:
            stack = Stack(template, **LAMBDA, DocsEnabled=docs)
            return {
                template["Resources"][name]["Properties"]["RouteKey"]
                for name in stack.active()
                if template["Resources"][name]["Type"] == "AWS::ApiGatewayV2::Route"
            }

        assert routes("false") == {"ANY /v1/{proxy+}"}
        assert routes("true") == {
            "ANY /v1/{proxy+}",
            "GET /docs",
            "GET /redoc",
            "GET /openapi.json",
        }
        integration = template["Resources"]["HttpApiIntegration"]["Properties"]
        assert integration["PayloadFormatVersion"] == "2.0"

    def test_a_schedule_runs_the_maintenance_pass(self, template: dict[str, Any]) -> None:
        rule = template["Resources"]["MaintenanceSchedule"]["Properties"]
        assert rule["ScheduleExpression"] == "rate(1 minute)"
        (target,) = rule["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["Function", "Arn"]}
        permission = template["Resources"]["MaintenanceSchedulePermission"]["Properties"]
        assert permission["Principal"] == "events.amazonaws.com"


class TestProvisionEmail:
    def test_ses_identity_reaches_the_pool(self, cognito: Any, template: dict[str, Any]) -> None:
        created = provision(
            cognito,
            template,
            parameters={
                "PoolName": "authsvc-infra-ses",
                "SesIdentity": "example.com",
                "EmailFromAddress": "no-reply@example.com",
            },
        )
        described = cognito.describe_user_pool(UserPoolId=created.user_pool_id)["UserPool"]
        assert described["EmailConfiguration"] == {
            "EmailSendingAccount": "DEVELOPER",
            "SourceArn": "arn:aws:ses:us-east-1:123456789012:identity/example.com",
            "From": "no-reply@example.com",
        }

    def test_default_pool_uses_cognitos_sender(self, cognito: Any, pool: ProvisionedPool) -> None:
        described = cognito.describe_user_pool(UserPoolId=pool.user_pool_id)["UserPool"]
        assert described.get("EmailConfiguration", {}).get("EmailSendingAccount") in (
            None,
            "COGNITO_DEFAULT",
        )


class TestComposeLocalSetup:
    """`python -m authsvc.dev.compose`, as compose's cognito-setup runs it, against moto."""

    def test_provisions_seeds_an_admin_and_writes_the_settings(
        self, emulator: EmbeddedCognito, cognito: Any, pool: ProvisionedPool, tmp_path: Path
    ) -> None:
        env_file = tmp_path / "local" / "cognito.env"
        admin = f"compose-admin-{uuid.uuid4().hex[:8]}@example.com"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "authsvc.dev.compose",
                "--endpoint-url",
                emulator.endpoint_url,
                "--env-file",
                str(env_file),
                "--admin-email",
                admin,
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "AUTHSVC_TEMPLATE_PATH": str(TEMPLATE)},
        )
        assert result.returncode == 0, result.stderr
        values = dict(
            shlex.split(line)[0].split("=", 1) for line in env_file.read_text().splitlines()
        )
        assert values["AUTHSVC_COGNITO_ENDPOINT_URL"] == emulator.endpoint_url
        # the template's pool, reused by name: the same one the emulator already holds
        assert values["AUTHSVC_COGNITO_USER_POOL_ID"] == pool.user_pool_id
        assert values["AUTHSVC_COGNITO_CLIENT_ID"] == pool.client_id
        assert oct(env_file.stat().st_mode & 0o777) == "0o644"
        # the password is printed once; the admin signs in with it and is an admin
        password = result.stderr.split(f"admin {admin} / ")[1].split(" ")[0]
        tokens = cognito.initiate_auth(
            ClientId=pool.client_id,
            AuthFlow="USER_PASSWORD_AUTH",
            AuthParameters={"USERNAME": admin, "PASSWORD": password},
        )["AuthenticationResult"]
        assert tokens["AccessToken"]
        groups = cognito.admin_list_groups_for_user(UserPoolId=pool.user_pool_id, Username=admin)
        assert [g["GroupName"] for g in groups["Groups"]] == ["admin"]

    def test_an_unreachable_emulator_fails_after_the_wait(self, tmp_path: Path) -> None:
        env_file = tmp_path / "cognito.env"
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "authsvc.dev.compose",
                "--endpoint-url",
                "http://127.0.0.1:9",
                "--env-file",
                str(env_file),
                "--wait",
                "0",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode != 0
        assert not env_file.exists()


class TestReadme:
    def test_deploy_section_names_every_parameter(self, template: dict[str, Any]) -> None:
        readme = (REPO / "README.md").read_text(encoding="utf-8")
        section = readme.split("## Deploy to AWS", 1)[1].split("\n## ", 1)[0]
        assert "--capabilities CAPABILITY_IAM" in section
        assert "create-admin --email" in section
        prefixes = re.findall(r"`([A-Za-z]+)\*`", section)
        missing = [
            name
            for name in template["Parameters"]
            if not re.search(rf"\b{name}\b", section)
            and not any(name.startswith(p) for p in prefixes)
        ]
        assert missing == []
        # the example deploy sets every service parameter explicitly
        example = section.split("aws cloudformation deploy", 1)[1].split("```", 1)[0]
        overridden = set(re.findall(r"^\s+([A-Za-z0-9]+)=", example, re.M))
        service = {
            name
            for name in template["Parameters"]
            if not name.startswith(("Federation", "Directory", "Google", "Facebook", "Amazon"))
            and not name.startswith(("Apple", "Oidc", "Saml", "HostedUi", "Authenticated"))
            and not name.startswith("Guest")
        }
        assert service - overridden == set()
