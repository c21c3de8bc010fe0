"""The OpenAPI document and the docs pages (issue 13, items 1 and 2).

- /docs and /redoc load every asset from the app itself (no CDN), and AUTHSVC_DOCS=false
  turns them off;
- the document a generator reads: camelCase operation ids, one tag per domain, the package
  version, problem responses in application/problem+json only with the real example for
  each code, no FastAPI default validation schemas, request examples the app accepts;
- the committed docs/openapi.json is the app's document.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc import errors, problems
from authsvc.config import Settings
from authsvc.main import create_app
from authsvc.openapi import CAMEL_CASE, PASSWORD_MIN_LENGTH, REQUEST_EXAMPLES
from tests.helpers import assert_problem, new_email

ROOT = Path(__file__).resolve().parents[1]
COMMITTED = ROOT / "docs" / "openapi.json"
PROBLEM = "application/problem+json"


def _app(**overrides: Any) -> Any:
    values: dict[str, Any] = {
        "cognito_user_pool_id": "us-east-1_document",
        "cognito_client_id": "document",
        "database_url": "sqlite://",
        "secret_key": "openapi-document-only-key",
        **overrides,
    }
    return create_app(Settings(**values))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return dict(_app(dev_mode=True).openapi())


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


class TestDocsPages:
    """No request leaves the machine: every script, style and icon is the app's own."""

    @pytest.mark.parametrize("page", ["/docs", "/redoc"])
    def test_page_loads_only_local_assets(self, page: str) -> None:
        client = TestClient(_app())
        response = client.get(page)
        assert response.status_code == 200, response.text
        html = response.text
        urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
        urls += re.findall(r"""url:\s*['"]([^'"]+)['"]""", html)
        assert urls, html
        for url in urls:
            assert url.startswith("/"), f"{page} loads {url} from elsewhere"
            assert client.get(url).status_code == 200, url
        assert "fonts.googleapis" not in html and "cdn.jsdelivr" not in html

    def test_assets_are_the_vendored_files_with_their_licences(self) -> None:
        client = TestClient(_app())
        script = client.get("/docs/assets/swagger-ui/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        assert "javascript" in script.headers["content-type"]
        for licence in ("/docs/assets/swagger-ui/LICENSE", "/docs/assets/redoc/LICENSE"):
            assert client.get(licence).status_code == 200

    def test_docs_off(self) -> None:
        client = TestClient(_app(docs=False))
        for path in ("/docs", "/redoc", "/openapi.json", "/docs/assets/redoc/LICENSE"):
            response = client.get(path)
            body = assert_problem(response, 404, "not_found")
            assert "/docs" not in body["detail"]


class TestOperations:
    def test_operation_ids_are_camel_case_and_unique(self, document: dict[str, Any]) -> None:
        ids = [op["operationId"] for _, _, op in _operations(document)]
        assert len(ids) == len(set(ids)), ids
        for operation_id in ids:
            assert CAMEL_CASE.fullmatch(operation_id), operation_id
        named = {(m, p): op["operationId"] for m, p, op in _operations(document)}
        assert named[("POST", "/v1/auth/sign-up")] == "signUp"
        assert named[("POST", "/v1/auth/sign-in")] == "signIn"
        assert named[("POST", "/v1/auth/challenge")] == "answerChallenge"
        assert named[("GET", "/v1/me")] == "getMe"
        assert named[("POST", "/v1/invitations")] == "createInvitation"

    def test_one_described_tag_per_operation(self, document: dict[str, Any]) -> None:
        described = {tag["name"] for tag in document["tags"]}
        for method, path, operation in _operations(document):
            assert len(operation["tags"]) == 1, (method, path)
            assert operation["tags"][0] in described, (method, path)

    def test_version_is_the_package_version(self, document: dict[str, Any]) -> None:
        assert document["info"]["version"] == version("authsvc")


class TestProblemResponses:
    def test_every_error_is_a_problem_with_the_real_example(self, document: dict[str, Any]) -> None:
        seen = 0
        for method, path, operation in _operations(document):
            for status_text, answer in operation["responses"].items():
                status = int(status_text)
                if status < 400:
                    continue
                content = answer["content"]
                assert list(content) == [PROBLEM], (method, path, status)
                examples = content[PROBLEM]["examples"]
                assert examples, (method, path, status)
                for code, example in examples.items():
                    value = example["value"]
                    assert value["status"] == status, (method, path, code)
                    assert value["code"] == code
                    assert value["type"] == f"urn:authsvc:problem:{code}"
                    seen += 1
        assert seen > 100

    def test_examples_come_from_the_error_classes(self, document: dict[str, Any]) -> None:
        answers = document["paths"]["/v1/auth/sign-in"]["post"]["responses"]
        example = answers["401"]["content"][PROBLEM]["examples"]["invalid_credentials"]["value"]
        assert example["title"] == errors.InvalidCredentialsError.title
        assert example["detail"] == errors.InvalidCredentialsError.default_detail
        invalid = answers["422"]["content"][PROBLEM]["examples"]["validation_error"]["value"]
        assert invalid["errors"], invalid

    def test_readiness_failure_is_a_problem(self, document: dict[str, Any]) -> None:
        answer = document["paths"]["/readyz"]["get"]["responses"]["503"]
        assert list(answer["content"]) == [PROBLEM]
        example = answer["content"][PROBLEM]["examples"]["upstream_unavailable"]["value"]
        assert example["status"] == 503 and example["checks"]

    def test_no_fastapi_default_validation_schemas(self, document: dict[str, Any]) -> None:
        text = json.dumps(document)
        assert "HTTPValidationError" not in text
        assert "#/components/schemas/ValidationError" not in text

    def test_unknown_code_cannot_be_documented(self) -> None:
        with pytest.raises(ValueError, match="no 404 problem"):
            problems.problem_example("invalid_credentials", 404)


class TestRequestExamples:
    """The documented request examples go through the real app's validation."""

    @pytest.mark.parametrize("name", sorted(REQUEST_EXAMPLES))
    def test_example_is_in_the_document(self, document: dict[str, Any], name: str) -> None:
        assert document["components"]["schemas"][name]["examples"] == [REQUEST_EXAMPLES[name]]

    def test_sign_up_example_is_accepted(self, client: TestClient) -> None:
        body = {**REQUEST_EXAMPLES["SignUpRequest"], "email": new_email("example")}
        response = client.post("/v1/auth/sign-up", json=body)
        assert response.status_code == 202, response.text


def test_committed_document_is_the_apps() -> None:
    """docs/openapi.json is what `authsvc openapi` prints: regenerate with `make openapi-json`."""
    printed = subprocess.run(
        [sys.executable, "-m", "authsvc.cli", "openapi"],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    committed = COMMITTED.read_text()
    assert json.loads(printed) == json.loads(committed), (
        "docs/openapi.json is out of date: run `make openapi-json` and commit it"
    )


class TestStatedConstraints:
    def test_new_password_minimum_is_the_templates(self, document: dict[str, Any]) -> None:
        from authsvc.dev.emulator import load_template

        template = load_template(ROOT / "infra" / "template.yaml")  # CFN tags understood
        pools = [
            r["Properties"]
            for r in template["Resources"].values()
            if r["Type"] == "AWS::Cognito::UserPool"
        ]
        minimum = pools[0]["Policies"]["PasswordPolicy"]["MinimumLength"]
        assert minimum == PASSWORD_MIN_LENGTH
        schemas = document["components"]["schemas"]
        assert schemas["SignUpRequest"]["properties"]["password"]["minLength"] == minimum
        assert schemas["SetPasswordRequest"]["properties"]["password"]["minLength"] == minimum
        # Signing in takes any password the account may still have: no minimum there.
        assert "minLength" not in schemas["SignInRequest"]["properties"]["password"] or (
            schemas["SignInRequest"]["properties"]["password"]["minLength"] == 1
        )

    @pytest.mark.parametrize(
        "path", ["/v1/invitations", "/v1/admin/users", "/v1/admin/audit-events"]
    )
    def test_list_parameters(self, document: dict[str, Any], path: str) -> None:
        parameters = {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}
        assert parameters["limit"]["minimum"] == 1 and parameters["limit"]["maximum"] == 100
        cursor = parameters["cursor"]["anyOf"][0]
        assert cursor["pattern"] == "^[A-Za-z0-9_-]+$"
