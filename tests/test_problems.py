"""Cross-cutting HTTP behaviour: problem documents, body limits, headers, health (DESIGN §2)."""

from __future__ import annotations

import re

import pytest

from tests.helpers import PASSWORD, assert_problem, confirmed_user, latest_code, new_email

LIMIT = 64 * 1024
SIGN_IN = "/v1/auth/sign-in"


def oversized_json() -> bytes:
    return b'{"email": "a@example.com", "password": "' + b"x" * LIMIT + b'"}'


class TestProblemDocuments:
    @pytest.mark.parametrize(
        ("method", "path", "kwargs", "status", "code"),
        [
            ("post", SIGN_IN, {"json": {}}, 422, "validation_error"),
            (
                "post",
                SIGN_IN,
                {"json": {"email": "x@example.com", "password": "No-such-1!"}},
                401,
                "invalid_credentials",
            ),
            ("get", "/v1/auth/session", {}, 401, "not_authenticated"),
            ("get", "/v1/me", {"headers": {"Authorization": "Bearer x"}}, 401, "invalid_token"),
            (
                "post",
                "/v1/auth/sign-up/confirm",
                {"json": {"email": "x@example.com", "code": "123456"}},
                400,
                "invalid_code",
            ),
            ("get", "/v1/nope", {}, 404, "not_found"),
            ("delete", SIGN_IN, {}, 405, "method_not_allowed"),
        ],
    )
    def test_every_error_is_a_problem_document(self, client, method, path, kwargs, status, code):
        response = getattr(client, method)(path, **kwargs)
        body = assert_problem(response, status, code)
        assert response.headers["content-type"] == "application/problem+json"
        assert body["type"] == f"urn:authsvc:problem:{code}"
        assert isinstance(body["title"], str) and body["title"]
        assert isinstance(body["detail"], str) and body["detail"]
        assert body["request_id"] == response.headers["x-request-id"]

    def test_malformed_json_is_a_validation_error(self, client):
        response = client.post(
            SIGN_IN, content=b'{"email": ', headers={"Content-Type": "application/json"}
        )
        body = assert_problem(response, 422, "validation_error")
        assert [e["type"] for e in body["errors"]] == ["json_invalid"]
        for issue in body["errors"]:
            assert set(issue) == {"loc", "msg", "type"}

    def test_validation_errors_list_loc_msg_and_type(self, client):
        response = client.post(SIGN_IN, json={"email": "not-an-email", "password": ""})
        body = assert_problem(response, 422, "validation_error")
        assert {tuple(e["loc"]) for e in body["errors"]} == {
            ("body", "email"),
            ("body", "password"),
        }
        for issue in body["errors"]:
            assert set(issue) == {"loc", "msg", "type"}

    def test_text_plain_body_is_unsupported_media_type(self, client):
        response = client.post(
            SIGN_IN,
            content=b'{"email": "a@example.com", "password": "x"}',
            headers={"Content-Type": "text/plain"},
        )
        assert_problem(response, 415, "unsupported_media_type")

    def test_body_without_content_type_is_unsupported_media_type(self, client):
        response = client.post(SIGN_IN, content=b'{"email": "a@example.com", "password": "x"}')
        assert_problem(response, 415, "unsupported_media_type")

    def test_json_suffix_media_type_is_accepted(self, client):
        response = client.post(
            SIGN_IN,
            content=b'{"email": "nobody@example.com", "password": "Passw0rd!"}',
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert_problem(response, 401, "invalid_credentials")

    def test_large_body_with_content_length_is_payload_too_large(self, client):
        body = oversized_json()
        response = client.post(SIGN_IN, content=body, headers={"Content-Type": "application/json"})
        assert response.request.headers["content-length"] == str(len(body))
        problem = assert_problem(response, 413, "payload_too_large")
        assert str(LIMIT) in problem["detail"]

    def test_large_chunked_body_is_payload_too_large(self, client):
        def chunks():
            data = oversized_json()
            for start in range(0, len(data), 4096):
                yield data[start : start + 4096]

        response = client.post(
            SIGN_IN, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
        assert_problem(response, 413, "payload_too_large")

    def test_chunked_body_within_the_limit_is_accepted(self, client):
        def chunks():
            yield b'{"email": "nobody@example.com", '
            yield b'"password": "Passw0rd!"}'

        response = client.post(
            SIGN_IN, content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers
        assert_problem(response, 401, "invalid_credentials")

    def test_unknown_route_is_not_found(self, client):
        assert_problem(client.get("/v1/does-not-exist"), 404, "not_found")

    def test_wrong_method_is_method_not_allowed(self, client):
        response = client.get(SIGN_IN)
        body = assert_problem(response, 405, "method_not_allowed")
        assert body["status"] == 405
        assert "POST" in response.headers["allow"]

    def test_validation_errors_never_echo_the_password(self, client):
        marker = "S3cr3tMark3r"
        password = (marker + "!") * 23 + "x" * (300 - 23 * (len(marker) + 1))
        assert len(password) == 300
        response = client.post(SIGN_IN, json={"email": "a@example.com", "password": password})
        body = assert_problem(response, 422, "validation_error")
        assert ["body", "password"] in [e["loc"] for e in body["errors"]]
        assert marker not in response.text

    def test_sign_up_validation_never_echoes_the_password(self, client):
        marker = "An0therMark3r"
        response = client.post(
            "/v1/auth/sign-up",
            json={"email": "bad", "password": marker * 30, "family_name": "T"},
        )
        assert_problem(response, 422, "validation_error")
        assert marker not in response.text


class TestHeaders:
    @pytest.mark.parametrize("path", ["/healthz", "/v1/auth/session", "/v1/nope"])
    def test_security_headers(self, client, path):
        response = client.get(path)
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"

    def test_security_headers_on_middleware_rejections(self, client):
        response = client.post(SIGN_IN, content=b"x", headers={"Content-Type": "text/plain"})
        assert response.status_code == 415
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "no-referrer"

    def test_api_responses_are_not_cached(self, client):
        assert client.get("/v1/auth/session").headers["cache-control"] == "no-store"

    def test_request_id_is_echoed(self, client):
        response = client.get("/healthz", headers={"X-Request-ID": "trace-abc.123_x"})
        assert response.headers["x-request-id"] == "trace-abc.123_x"
        problem = client.get("/v1/auth/session", headers={"X-Request-ID": "trace-def"})
        assert problem.headers["x-request-id"] == "trace-def"
        assert problem.json()["request_id"] == "trace-def"

    def test_request_id_is_generated_otherwise(self, client):
        first = client.get("/healthz").headers["x-request-id"]
        second = client.get("/healthz").headers["x-request-id"]
        assert re.fullmatch(r"[A-Za-z0-9._-]{8,64}", first)
        assert first != second

    def test_unsafe_request_id_is_replaced(self, client):
        response = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        assert response.headers["x-request-id"] != "bad id\twith spaces"
        assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", response.headers["x-request-id"])


class TestHealth:
    def test_healthz(self, client):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

    def test_readyz(self, client):
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        checks = {check["name"]: check for check in body["checks"]}
        assert checks["database"]["status"] == "ok"
        assert checks["cognito"]["status"] == "ok"


class TestDevOutbox:
    def test_outbox_lists_delivered_codes(self, client, outbox):
        email = new_email()
        response = client.post(
            "/v1/auth/sign-up", json={"email": email, "password": PASSWORD, "family_name": "T"}
        )
        assert response.status_code == 202
        code = latest_code(outbox, email, "sign_up_code")

        response = client.get("/dev/outbox", params={"to": email})
        assert response.status_code == 200, response.text
        items = response.json()
        assert len(items) == 1
        assert items[0]["to"] == email
        assert items[0]["kind"] == "sign_up_code"
        assert items[0]["code"] == code
        assert {"subject", "body"} <= items[0].keys()

    def test_outbox_is_newest_first_and_filters(self, client, outbox):
        email = confirmed_user(client, outbox)
        assert client.post("/v1/auth/password/forgot", json={"email": email}).status_code == 202
        items = client.get("/dev/outbox", params={"to": email.upper()}).json()
        assert [i["kind"] for i in items] == ["password_reset_code", "sign_up_code"]
        only = client.get("/dev/outbox", params={"to": email, "kind": "sign_up_code"}).json()
        assert [i["kind"] for i in only] == ["sign_up_code"]
        everything = client.get("/dev/outbox").json()
        assert len(everything) >= 2
