"""The template's directory block: off by default, the triggers inlined from the source."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from authsvc.dev.emulator import default_template_path, load_template
from authsvc.directory import triggers

FUNCTIONS = {
    "DirectoryDefineChallenge": "index.define",
    "DirectoryCreateChallenge": "index.create",
    "DirectoryVerifyChallenge": "index.verify",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(default_template_path())


def test_feature_is_off_by_default(template: dict[str, Any]) -> None:
    assert template["Parameters"]["DirectorySignIn"]["Default"] == "false"
    assert template["Conditions"]["DirectoryEnabled"] == {
        "Fn::Equals": [{"Ref": "DirectorySignIn"}, "true"]
    }
    for name, resource in template["Resources"].items():
        if name.startswith("Directory"):
            assert resource["Condition"] in {"DirectoryEnabled", "DirectoryService"}, name


def test_triggers_are_the_tested_source(template: dict[str, Any]) -> None:
    source = Path(triggers.__file__).read_text()
    assert len(source) <= 4096  # CloudFormation's limit for inline Python
    resources = template["Resources"]
    for name, handler in FUNCTIONS.items():
        props = resources[name]["Properties"]
        assert props["Handler"] == handler
        assert props["Code"]["ZipFile"] == source, f"{name}: re-inline triggers.py"
        permission = resources[f"{name}Permission"]["Properties"]
        assert permission["Principal"] == "cognito-idp.amazonaws.com"
        assert permission["SourceArn"] == {"Fn::GetAtt": ["UserPool", "Arn"]}
    verify_env = resources["DirectoryVerifyChallenge"]["Properties"]["Environment"]["Variables"]
    assert verify_env == {"PROOF_KEY_SECRET_ARN": {"Ref": "DirectoryProofKey"}}


def test_pool_uses_the_triggers_only_when_enabled(template: dict[str, Any]) -> None:
    config = template["Resources"]["UserPool"]["Properties"]["LambdaConfig"]
    condition, enabled, disabled = config["Fn::If"]
    assert condition == "DirectoryEnabled"
    assert disabled == {"Ref": "AWS::NoValue"}
    assert set(enabled) == {
        "DefineAuthChallenge",
        "CreateAuthChallenge",
        "VerifyAuthChallengeResponse",
    }


def test_dedicated_client(template: dict[str, Any]) -> None:
    props = template["Resources"]["DirectoryClient"]["Properties"]
    assert props["ExplicitAuthFlows"] == ["ALLOW_CUSTOM_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    assert props["PreventUserExistenceErrors"] == "ENABLED"


def test_service_permissions_and_settings(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    policy = resources["DirectoryServicePolicy"]["Properties"]
    assert policy["RoleName"] == {"Ref": "TaskRole"}
    (statement,) = policy["PolicyDocument"]["Statement"]
    assert {
        "cognito-idp:AdminInitiateAuth",
        "cognito-idp:AdminRespondToAuthChallenge",
        "cognito-idp:AdminGetUser",
        "cognito-idp:AdminCreateUser",
        "cognito-idp:AdminUpdateUserAttributes",
    } <= set(statement["Action"])
    (container,) = resources["TaskDefinition"]["Properties"]["ContainerDefinitions"]
    secrets = [s["Fn::If"][1]["Name"] for s in container["Secrets"] if "Fn::If" in s]
    assert secrets == ["AUTHSVC_DIRECTORY_PROOF_KEY", "AUTHSVC_LDAP_BIND_PASSWORD"]
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    assert environment["AUTHSVC_DIRECTORY_CLIENT_ID"] == {
        "Fn::If": ["DirectoryService", {"Ref": "DirectoryClient"}, ""]
    }
