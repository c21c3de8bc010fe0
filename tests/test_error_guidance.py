"""Errors that tell people what to do (issue 13 item 7; issue 11: what `loc` may echo)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc.main import create_app
from authsvc.problems import REDACTED_NAME
from tests.conftest import Emulator, make_settings
from tests.helpers import (
    PASSWORD,
    assert_problem,
    confirmed_user,
    latest_code,
    new_email,
    sign_in,
    sign_up,
)

APP_ORIGIN = "https://app.example.com"


def _admin(client: TestClient, outbox: Any) -> str:
    """A confirmed user in the pool's admin group: its email."""
    admin: str = confirmed_user(client, outbox)
    state = client.app.state.authsvc  # type: ignore[attr-defined]
    state.gateway.client.admin_add_user_to_group(
        UserPoolId=state.settings.cognito_user_pool_id, Username=admin, GroupName="admin"
    )
    return admin


def _as_rendered(response: Any) -> bytes:
    """The bytes problems.problem_response would send for this body."""
    return json.dumps(
        response.json(), ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()


class TestNoRoute:
    @pytest.mark.parametrize("path", ["/", "/v1/nope", "/v2/auth/sign-in"])
    def test_unknown_route_points_to_the_docs(self, client: TestClient, path: str) -> None:
        body = assert_problem(client.get(path), 404, "not_found")
        assert "/docs" in body["detail"], body

    @pytest.mark.parametrize(
        ("method", "path", "route"),
        [
            ("get", "/v1/me/", "/v1/me"),
            ("post", "/v1/auth/sign-in/", "/v1/auth/sign-in"),
            ("get", "/v1/admin/users/someone/", "/v1/admin/users/{username}"),
        ],
    )
    def test_trailing_slash_names_the_route(
        self, client: TestClient, method: str, path: str, route: str
    ) -> None:
        response = getattr(client, method)(path, follow_redirects=False)
        body = assert_problem(response, 404, "not_found")
        assert f"drop the trailing slash ({route})" in body["detail"], body
        assert "someone" not in body["detail"]  # the template, never the raw path

    def test_a_mounted_folder_without_its_slash_is_redirected(self, client: TestClient) -> None:
        response = client.get("/docs/assets", follow_redirects=False)
        assert response.status_code == 308
        assert response.headers["location"] == "/docs/assets/"
        assert response.text  # never an empty redirect
        body = assert_problem(client.post("/docs/assets"), 404, "not_found")
        assert "add a trailing slash (/docs/assets/)" in body["detail"], body


class TestTokens:
    def test_an_id_token_is_told_to_send_the_access_token(self, client, outbox) -> None:
        tokens = sign_in(client, confirmed_user(client, outbox))
        response = client.get("/v1/me", headers={"Authorization": f"Bearer {tokens.id_token}"})
        body = assert_problem(response, 401, "invalid_token")
        assert "ID token" in body["detail"] and "access token" in body["detail"], body


class TestValidation:
    def test_custom_prefix_is_explained(self, client, outbox) -> None:
        tokens = sign_in(client, confirmed_user(client, outbox))
        response = client.patch(
            "/v1/me", json={"attributes": {"custom:test_attribute1": "x"}}, headers=tokens.bearer
        )
        body = assert_problem(response, 422, "validation_error")
        assert any("without the `custom:` prefix" in e["msg"] for e in body["errors"]), body

    def test_a_blank_name_is_explained_without_the_pattern(self, client: TestClient) -> None:
        response = client.post(
            "/v1/auth/sign-up",
            json={
                "email": new_email(),
                "password": PASSWORD,
                "given_name": " \t ",
                "family_name": "Lovelace",
            },
        )
        body = assert_problem(response, 422, "validation_error")
        assert body["errors"] == [
            {
                "loc": ["body", "given_name"],
                "msg": "A name needs at least one character that is not whitespace.",
                "type": "string_pattern_mismatch",
            }
        ], body

    def test_a_domain_validation_error_carries_errors(self, client, outbox) -> None:
        admin = _admin(client, outbox)
        tokens = sign_in(client, admin)
        response = client.get(
            "/v1/admin/audit-events", params={"cursor": "not-a-cursor"}, headers=tokens.bearer
        )
        # Well formed, never issued: not a validation_error (no schema can tell), but a code
        # of its own.
        assert_problem(response, 400, "invalid_cursor")
        # A top-level field as an attribute: the schema refuses it, and says why.
        response = client.patch("/v1/me", json={"attributes": {"sub": "x"}}, headers=tokens.bearer)
        body = assert_problem(response, 422, "validation_error")
        assert [e["loc"] for e in body["errors"]] == [["body", "attributes", "sub", "[key]"]]
        assert "own field" in body["errors"][0]["msg"], body

    @pytest.mark.parametrize(
        ("path", "method", "json", "code", "loc"),
        [
            ("/v1/me", "PATCH", {"attributes": {"nope": "x"}}, "unknown_attribute", None),
            ("/v1/me", "PATCH", {"family_name": None}, "attribute_required", None),
            (
                "/v1/me",
                "PATCH",
                {"attributes": {"test_attribute1": "x" * 300}},
                "invalid_attribute_value",
                None,
            ),
            (
                "/v1/invitations",
                "POST",
                {"email": "carol@example.com", "groups": ["no-such-group"]},
                "unknown_group",
                ["body", "groups", 0],
            ),
        ],
    )
    def test_what_only_the_pool_refuses_names_the_field(
        self, client, outbox, path, method, json, code, loc
    ) -> None:
        """Schema-valid, refused by the pool: 400 with its own code (never validation_error),
        and errors[] naming the field, as validation_error does."""
        admin = _admin(client, outbox)
        tokens = sign_in(client, admin)
        response = client.request(method, path, json=json, headers=tokens.bearer)
        body = assert_problem(response, 400, code)
        assert body["type"] == f"urn:authsvc:problem:{code}"
        expected = loc or (
            ["body", *json]
            if "attributes" not in json
            else ["body", "attributes", *json["attributes"]]
        )
        assert [(e["loc"], e["type"]) for e in body["errors"]] == [(expected, code)], body
        assert body["errors"][0]["msg"] in body["detail"]

    def test_a_group_name_is_explained_without_the_pattern(self, client, outbox) -> None:
        admin = _admin(client, outbox)
        bearer = sign_in(client, admin).bearer
        in_body = client.post(
            "/v1/invitations",
            json={"email": new_email(), "groups": ["two words"]},
            headers=bearer,
        )
        body = assert_problem(in_body, 422, "validation_error")
        assert body["errors"] == [
            {
                "loc": ["body", "groups", 0],
                "msg": "A group name is 1 to 128 printable ASCII characters, without spaces.",
                "type": "string_pattern_mismatch",
            }
        ], body
        in_path = client.put(f"/v1/admin/users/{admin}/groups/two%20words", headers=bearer)
        body = assert_problem(in_path, 422, "validation_error")
        assert body["errors"] == [
            {
                "loc": ["path", "group"],
                "msg": "A group name is 1 to 128 printable ASCII characters, without spaces"
                " or `/`.",
                "type": "string_pattern_mismatch",
            }
        ], body

    @pytest.mark.parametrize("name", ["x" * 65, "bell\x07", "new\nline", "del\x7f"])
    def test_loc_never_echoes_long_or_control_character_names(
        self, client: TestClient, name: str
    ) -> None:
        body = {"email": "bob@example.com", "password": PASSWORD, name: 1}
        response = client.post("/v1/auth/sign-in", json=body)
        problem = assert_problem(response, 422, "validation_error")
        locs = [issue["loc"] for issue in problem["errors"]]
        assert ["body", REDACTED_NAME] in locs, locs
        assert name not in json.dumps(problem)

    def test_loc_echoes_a_short_printable_name(self, client: TestClient) -> None:
        body = {"email": "bob@example.com", "password": PASSWORD, "x" * 64: 1}
        response = client.post("/v1/auth/sign-in", json=body)
        problem = assert_problem(response, 422, "validation_error")
        assert ["body", "x" * 64] in [issue["loc"] for issue in problem["errors"]]


class TestTransportProblems:
    def test_413_and_415_are_rendered_like_every_problem(self, client: TestClient) -> None:
        too_large = client.post(
            "/v1/auth/sign-in",
            content=b'{"email":"' + b"x" * 70_000 + b'"}',
            headers={"Content-Type": "application/json"},
        )
        wrong_type = client.post(
            "/v1/auth/sign-in", content=b"email=a", headers={"Content-Type": "text/plain"}
        )
        unauthenticated = client.get("/v1/me")
        for response, status, code in (
            (too_large, 413, "payload_too_large"),
            (wrong_type, 415, "unsupported_media_type"),
            (unauthenticated, 401, "not_authenticated"),
        ):
            body = assert_problem(response, status, code)
            assert response.content == _as_rendered(response)
            assert list(body)[:5] == ["type", "title", "status", "detail", "code"]
            assert body["request_id"] == response.headers["x-request-id"]


class TestConfirmation:
    def test_confirming_twice_says_it_is_already_confirmed(self, client, outbox) -> None:
        email = new_email()
        assert sign_up(client, email).status_code == 202
        code = latest_code(outbox, email, "sign_up_code")
        body = {"email": email, "code": code}
        assert client.post("/v1/auth/sign-up/confirm", json=body).status_code == 204
        again = client.post("/v1/auth/sign-up/confirm", json=body)
        problem = assert_problem(again, 409, "conflict")
        assert "already confirmed" in problem["detail"]


@pytest.fixture(scope="module")
def limited(cognito: Emulator, database_url: str) -> Iterator[TestClient]:
    settings = make_settings(
        cognito,
        database_url,
        rate_limits_enabled=True,
        rate_limit_sign_in_ip="2/minute",
        cors_origins=[APP_ORIGIN],
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


class TestRateLimit:
    def test_429_says_how_long_to_wait(self, limited: TestClient) -> None:
        body = {"email": new_email(), "password": PASSWORD}
        statuses = [limited.post("/v1/auth/sign-in", json=body).status_code for _ in range(3)]
        assert statuses[-1] == 429, statuses
        response = limited.post("/v1/auth/sign-in", json=body)
        problem = assert_problem(response, 429, "rate_limited")
        wait = int(response.headers["retry-after"])
        assert f"Retry in {wait} second" in problem["detail"], problem


class TestCors:
    def _preflight(self, client: TestClient, origin: str, method: str = "POST") -> Any:
        return client.options(
            "/v1/auth/refresh",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type,x-csrf",
            },
        )

    def test_allowed_preflight(self, limited: TestClient) -> None:
        response = self._preflight(limited, APP_ORIGIN)
        assert response.status_code == 200, response.text
        assert response.headers["access-control-allow-origin"] == APP_ORIGIN

    def test_refused_origin_is_a_problem_naming_the_setting(self, limited: TestClient) -> None:
        response = self._preflight(limited, "https://elsewhere.example.com")
        body = assert_problem(response, 403, "forbidden")
        assert "AUTHSVC_CORS_ORIGINS" in body["detail"]
        assert response.content == _as_rendered(response)

    def test_refused_without_any_origin_configured(self, client: TestClient) -> None:
        body = assert_problem(self._preflight(client, APP_ORIGIN), 403, "forbidden")
        assert "AUTHSVC_CORS_ORIGINS" in body["detail"]

    def test_cookie_refresh_from_a_refused_origin(self, limited: TestClient) -> None:
        limited.cookies.set("__Host-authsvc_refresh", "r" * 40)
        try:
            response = limited.post(
                "/v1/auth/refresh",
                headers={"X-CSRF": "1", "Origin": "https://elsewhere.example.com"},
            )
        finally:
            limited.cookies.clear()
        body = assert_problem(response, 403, "forbidden")
        assert "AUTHSVC_CORS_ORIGINS" in body["detail"]
