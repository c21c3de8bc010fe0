"""No account enumeration (issue: Security, 2). This file states the guarantee.

- Sign-in with an unknown user, a wrong password or a disabled user: the same status,
  headers and body, byte for byte once the request id is taken out.
- Sign-up, resend and forgot: the same answer whether or not the email has an account
  (and whatever state that account is in).

Answers are compared as raw bytes, not as parsed JSON, so that key order, whitespace or an
extra field would show. The apps run with the rate limits on (shipped defaults), as in
production. Every email here shares its first letters and domain, because the masked
delivery destination is computed from the submitted address (the same input gives the same
output, which is the point).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.helpers import PASSWORD, new_email, sign_up
from tests.security.support import LimitedApp, direct_user, limited_app

SIGN_IN = "/v1/auth/sign-in"
SIGN_UP = "/v1/auth/sign-up"
RESEND = "/v1/auth/sign-up/resend"
FORGOT = "/v1/auth/password/forgot"
WRONG_PASSWORD = "Wr0ng-Passw0rd!"


@pytest.fixture(scope="module")
def app(cognito: Any, database_url: str) -> Iterator[LimitedApp]:
    with limited_app(cognito, database_url) as limited:
        yield limited


def comparable(response: Any) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and raw body with the request id (which differs per request) cut out."""
    request_id = response.headers["x-request-id"]
    assert request_id
    body: bytes = response.content
    occurrences = body.count(request_id.encode())
    assert occurrences <= 1
    headers = {k: v for k, v in response.headers.items() if k not in {"x-request-id", "date"}}
    # The id's own length is not the answer's: take it out of content-length too.
    if "content-length" in headers:
        length = int(headers["content-length"]) - len(request_id) * occurrences
        headers["content-length"] = str(length)
    return response.status_code, headers, body.replace(request_id.encode(), b"")


def assert_indistinguishable(responses: dict[str, Any]) -> None:
    (first_name, first), *rest = responses.items()
    reference = comparable(first)
    for name, response in rest:
        assert comparable(response) == reference, f"{name} differs from {first_name}"


# --------------------------------------------------------------------------- fixtures


def disabled_user(cognito: Any) -> str:
    email = direct_user(cognito, tag="user")
    cognito.client.admin_disable_user(UserPoolId=cognito.pool.user_pool_id, Username=email)
    return email


def unconfirmed_user(app: LimitedApp) -> str:
    email = new_email()
    assert sign_up(app.client, email).status_code == 202
    return email


# --------------------------------------------------------------------------- sign-in


def test_sign_in_failures_are_indistinguishable(app: LimitedApp, cognito: Any):
    known = direct_user(cognito, tag="user")
    disabled = disabled_user(cognito)

    def attempt(email: str, password: str) -> Any:
        return app.peer("198.51.100.60").post(SIGN_IN, json={"email": email, "password": password})

    responses = {
        "wrong password": attempt(known, WRONG_PASSWORD),
        "unknown user": attempt(new_email(), PASSWORD),
        "disabled user, right password": attempt(disabled, PASSWORD),
        "disabled user, wrong password": attempt(disabled, WRONG_PASSWORD),
    }
    status, headers, body = comparable(responses["wrong password"])
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert b'"code":"invalid_credentials"' in body
    assert_indistinguishable(responses)


def test_sign_in_failure_body_names_neither_the_user_nor_the_reason(app: LimitedApp, cognito: Any):
    email = disabled_user(cognito)
    response = app.client.post(SIGN_IN, json={"email": email, "password": PASSWORD})
    text = response.text.lower()
    for word in ("disabled", "not found", "exist", "unknown", email.split("@")[0]):
        assert word not in text, (word, response.text)


# ------------------------------------------------------------------------ sign-up, resend, forgot


def test_sign_up_answers_the_same_for_new_and_existing_emails(app: LimitedApp, cognito: Any):
    def attempt(email: str) -> Any:
        body = {"email": email, "password": PASSWORD, "family_name": "Tester"}
        return app.peer("198.51.100.61").post(SIGN_UP, json=body)

    responses = {
        "new email": attempt(new_email()),
        "confirmed account": attempt(direct_user(cognito, tag="user")),
        "unconfirmed account": attempt(unconfirmed_user(app)),
        "disabled account": attempt(disabled_user(cognito)),
    }
    status, headers, body = comparable(responses["new email"])
    assert status == 202
    assert headers["content-type"] == "application/json"
    assert body == b'{"delivery":{"medium":"EMAIL","destination":"u***@e***.com"}}'
    assert_indistinguishable(responses)


@pytest.mark.parametrize("path", [RESEND, FORGOT], ids=["resend", "forgot"])
def test_code_requests_answer_the_same_for_new_and_existing_emails(
    path: str, app: LimitedApp, cognito: Any
):
    def attempt(email: str) -> Any:
        return app.peer("198.51.100.62").post(path, json={"email": email})

    responses = {
        "unknown email": attempt(new_email()),
        "confirmed account": attempt(direct_user(cognito, tag="user")),
        "unconfirmed account": attempt(unconfirmed_user(app)),
        "disabled account": attempt(disabled_user(cognito)),
    }
    status, headers, body = comparable(responses["unknown email"])
    assert status == 202
    assert headers["content-type"] == "application/json"
    assert body == b'{"delivery":{"medium":"EMAIL","destination":"u***@e***.com"}}'
    assert_indistinguishable(responses)
