"""Property-based API testing: Schemathesis against the app's own OpenAPI document.

Every operation the document lists is exercised with generated valid and invalid input
(examples, coverage and fuzzing phases), and every response is checked against the
document: no 5xx, a documented status code, the documented content type, a body that
matches the documented schema and headers, invalid input refused with a 4xx, and auth
that is not ignored. Failures are fixed in ``src/authsvc``, not silenced here; the only
exclusions are per operation and per check, each with its reason.

Bounds: ``max_examples`` per operation keeps the file to a couple of minutes on two cores;
``derandomize`` makes a CI failure reproducible locally.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.core.parameters import ParameterLocation
from schemathesis.openapi.checks import RejectedPositiveData
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance

from authsvc import migrate
from authsvc.config import Settings
from authsvc.main import create_app
from tests.conftest import (
    POSTGRES_ADMIN_URL,
    Emulator,
    create_database,
    drop_database,
    make_settings,
)
from tests.helpers import Tokens, confirmed_user, new_email, sign_in

MAX_EXAMPLES = 20

# The document is read from an app built exactly like the one under test (dev mode, so the
# /dev/outbox route is in it). It is built at import time so that pytest gets one test per
# operation (xdist spreads them); its lifespan never runs (no workers, no database).
# ``test_document_is_the_served_one`` proves the app under test serves the same document.
_DOC_SETTINGS = Settings(
    cognito_user_pool_id="us-east-1_document",
    cognito_client_id="document",
    database_url="sqlite://",
    dev_mode=True,
    rate_limits_enabled=False,
)
_DOC_APP = create_app(_DOC_SETTINGS)


async def _document_only(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        raise RuntimeError("no lifespan: this app only serves its OpenAPI document")
    await _DOC_APP(scope, receive, send)


# Invalid input must be refused with a 4xx: Schemathesis' list plus 413, the middleware's
# answer to a body over AUTHSVC_MAX_BODY_BYTES (e.g. an over-long `session`), documented on
# every operation that takes a body.
_CONFIG = SchemathesisConfig.from_dict(
    {
        "checks": {
            "negative_data_rejection": {
                "expected-statuses": [
                    *("400", "401", "403", "404", "405", "406", "409", "413", "415", "422"),
                    *("428", "429", "5xx"),
                ]
            }
        }
    }
)
schema = schemathesis.openapi.from_asgi("/openapi.json", _document_only, config=_CONFIG)

# Operations behind the admin group; every other operation with a security requirement
# takes any signed-in user.
_ADMIN_PREFIXES = ("/v1/admin/", "/v1/invitations")
_PUBLIC_INVITATION_PATHS = {"/v1/invitations/lookup", "/v1/invitations/accept"}


def _is_protected(operation: Any) -> bool:
    return bool(operation.definition.raw.get("security"))


def _is_admin(operation: Any) -> bool:
    path = operation.path
    return (
        _is_protected(operation)
        and path.startswith(_ADMIN_PREFIXES)
        and path not in _PUBLIC_INVITATION_PATHS
    )


# Operations whose success ends the caller's sessions: each case gets a fresh token.
# (Turning TOTP off ends every session too, issue 11.)
_REVOKING = {("POST", "/v1/auth/sign-out"), ("DELETE", "/v1/me/mfa/totp")}


@dataclass
class Target:
    app: FastAPI
    session: Any  # schemathesis' ASGI session: the app under test, lifespan run by `client`
    client: TestClient
    user: Tokens
    admin: Tokens
    revoking_user: str
    fresh_token: Callable[[str], str]
    new_user: Callable[[], str]  # a fresh user's Cognito username
    new_invitation: Callable[[], str]  # a fresh pending invitation's id
    group: str  # a group that exists in the pool
    # status codes each protected operation answered the signed-in caller
    answered: dict[str, set[int]] = field(default_factory=dict)


_BUDGETS = (
    "user_authentication",
    "user_creation",
    "user_account_recovery",
    "user_read",
    "user_update",
    "user_list",
)


@pytest.fixture(scope="module")
def target(cognito: Emulator, postgres_server: str) -> Iterator[Target]:
    database_url = create_database(postgres_server, prefix="authsvc_st")
    migrate.upgrade(database_url)
    # Rate limits off (make_settings) and no outbound Cognito budget: a fuzzer sends far more
    # than a real account's quota per second, and these 503s are throttling, not answers.
    no_budget = {f"cognito_budget_{name}": 0 for name in _BUDGETS}
    app = create_app(make_settings(cognito, database_url, **no_budget))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            outbox = app.state.authsvc.outbox
            user = sign_in(client, confirmed_user(client, outbox, email=new_email("st-user")))
            admin_email = confirmed_user(client, outbox, email=new_email("st-admin"))
            cognito.client.admin_add_user_to_group(
                UserPoolId=cognito.pool.user_pool_id, Username=admin_email, GroupName="admin"
            )
            admin = sign_in(client, admin_email)
            revoking = confirmed_user(client, outbox, email=new_email("st-revoking"))

            def fresh_token(email: str) -> str:
                return sign_in(client, email).access_token

            def new_user() -> str:
                created = cognito.client.admin_create_user(
                    UserPoolId=cognito.pool.user_pool_id,
                    Username=new_email("st-subject"),
                    TemporaryPassword="Tempor4ry-Passw0rd!",
                    MessageAction="SUPPRESS",
                    UserAttributes=[{"Name": "family_name", "Value": "Subject"}],
                )["User"]
                return str(created["Username"])

            def new_invitation() -> str:
                response = client.post(
                    "/v1/invitations",
                    json={"email": new_email("st-invitee"), "family_name": "Invitee"},
                    headers=admin.bearer,
                )
                assert response.status_code == 201, response.text
                return str(response.json()["id"])

            target = Target(
                app=app,
                session=schemathesis_asgi.get_client(app),
                client=client,
                user=user,
                admin=admin,
                revoking_user=revoking,
                fresh_token=fresh_token,
                new_user=new_user,
                new_invitation=new_invitation,
                group=cognito.pool.groups[0],
            )
            yield target
        # The token was good: each protected operation got past authentication at least once.
        stuck = {label for label, codes in target.answered.items() if codes <= {401}}
        assert not stuck, f"only ever 401 with a valid token: {sorted(stuck)}"
    finally:
        drop_database(POSTGRES_ADMIN_URL, database_url)


def _bearer(target: Target, case: Any) -> str:
    operation = case.operation
    if (operation.method.upper(), operation.path) in _REVOKING:
        return target.fresh_token(target.revoking_user)
    return target.admin.access_token if _is_admin(operation) else target.user.access_token


# Every check runs on every operation (`--checks all`), positive_data_acceptance included:
# a request the document calls valid is accepted. The one exception: a refusal for a reason
# no schema can state (a wrong code, an unknown session or token, a password rule beyond
# length, what the user pool defines: its attributes, which are required, the values they
# take, its groups). Each operation lists the (status, code) of those it may answer, and none
# of them is ever validation_error — a validation_error for schema-valid data is a gap in the
# document.
_WRONG_CODE = {(400, "invalid_code"), (400, "expired_code")}
_POLICY = {(422, "invalid_password")}  # upper case, digit, symbol: the pool's, beyond length
_POOL_ATTRIBUTES = {
    (400, "unknown_attribute"),
    (400, "attribute_required"),
    (400, "invalid_attribute_value"),
}
_UNSTATABLE_REFUSALS: dict[str, set[tuple[int, str]]] = {
    "POST /v1/auth/sign-up": _POLICY | _POOL_ATTRIBUTES,
    "POST /v1/auth/sign-up/confirm": _WRONG_CODE,
    "POST /v1/auth/challenge": {(400, "invalid_session"), *_WRONG_CODE, *_POLICY},
    "POST /v1/auth/password/reset": _WRONG_CODE | _POLICY,
    "POST /v1/me/password": {(400, "invalid_current_password"), *_POLICY},
    "POST /v1/me/mfa/totp/verify": _WRONG_CODE,
    "POST /v1/invitations/lookup": {(400, "invalid_invitation")},
    "POST /v1/invitations/accept": {(400, "invalid_invitation"), *_POLICY, *_POOL_ATTRIBUTES},
    # Issue 11: TOTP off needs a recent sign-in or the current password; a guessed one is
    # refused like change-password's.
    "DELETE /v1/me/mfa/totp": {(400, "invalid_current_password")},
    "POST /v1/admin/users/{username}/password": _POLICY,
    # A well-formed cursor the server never issued: like an unknown token.
    "GET /v1/invitations": {(400, "invalid_cursor")},
    "GET /v1/admin/users": {(400, "invalid_cursor")},
    "GET /v1/admin/audit-events": {(400, "invalid_cursor")},
    # The pool's attributes (a name it does not define, a required one cleared, a value
    # over its own limit) and groups.
    "PATCH /v1/me": _POOL_ATTRIBUTES,
    "PATCH /v1/admin/users/{username}": _POOL_ATTRIBUTES,
    "POST /v1/invitations": {(400, "unknown_group"), *_POOL_ATTRIBUTES},
}


def _challenge_is_a_union() -> bool:
    """Issue 10 makes the challenge body a union on `challenge` (which of new_password and
    code is required): until then a body without the one its challenge needs is refused with
    validation_error, which the document cannot express."""
    request = _DOC_APP.openapi()["components"]["schemas"].get("ChallengeRequest", {})
    return "oneOf" in request or "discriminator" in request


def _accepts_positive_data(ctx: Any, response: Any, case: Any) -> bool | None:
    try:
        return positive_data_acceptance(ctx, response, case)
    except RejectedPositiveData:
        label = case.operation.label
        code = response.json().get("code")
        refusal = (response.status_code, code)
        if refusal in _UNSTATABLE_REFUSALS.get(label, set()):
            assert code != "validation_error"
            if refusal in _POOL_ATTRIBUTES or code == "unknown_group":
                # Like validation_error, these name each field at fault.
                issues = response.json()["errors"]
                assert issues and all(issue["loc"][0] == "body" for issue in issues)
            return None
        challenge = label == "POST /v1/auth/challenge"
        if code == "validation_error" and challenge and not _challenge_is_a_union():
            return None
        raise


def _excluded_checks(case: Any) -> list[Any]:
    return [positive_data_acceptance]


_ADDITIONAL_CHECKS = [_accepts_positive_data]


# derandomize: the same cases on every run (a CI failure reproduces locally); no example
# database either (nothing written to .hypothesis/, nothing replayed from an earlier run).
# The `target` fixture is module-scoped: the function-scoped-fixture check does not apply.
_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
    ],
)


def _point_at_real_resources(case: Any, target: Target) -> None:
    """A valid path names something that exists: a fresh user, group or invitation, so the
    success answers (and their bodies) are checked too, not only 404s."""
    if not case.path_parameters or (
        case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
    ):
        return
    if "username" in case.path_parameters:
        case.path_parameters["username"] = target.new_user()
    if "group" in case.path_parameters:
        case.path_parameters["group"] = target.group
    if "invitation_id" in case.path_parameters:
        case.path_parameters["invitation_id"] = target.new_invitation()


@schema.parametrize()
@_SETTINGS
def test_api_conforms_to_its_document(case: Any, target: Target) -> None:
    """Signed in (as an admin on admin routes): every answer is a documented one.

    The token goes in as an explicit header, so ``ignored_auth`` also replays each
    successful protected call without a token and with a forged one, expecting 401.
    """
    headers = {}
    # A case made invalid in its headers (e.g. the Authorization header left out) goes as
    # generated: adding a token would make it valid again.
    negative_headers = case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER)
    if _is_protected(case.operation) and not negative_headers:
        headers["Authorization"] = f"Bearer {_bearer(target, case)}"
        if _is_admin(case.operation):
            _point_at_real_resources(case, target)
    response = case.call_and_validate(
        session=target.session,
        headers=headers,
        excluded_checks=_excluded_checks(case),
        additional_checks=_ADDITIONAL_CHECKS,
    )
    if headers:
        target.answered.setdefault(case.operation.label, set()).add(response.status_code)


def _refused_before_auth(case: Any, response: Any) -> bool:
    """Whether the request was answered before the route's auth could run, and rightly so."""
    if case.method.upper() != case.operation.method.upper():
        assert response.status_code == 405, response.text  # the coverage phase's wrong methods
        return True
    if response.status_code in (413, 415):
        return True  # the middleware refused the body, before any route
    if response.status_code == 422:
        # FastAPI decodes the JSON body before it runs dependencies: only a body that is
        # not JSON at all is refused before the token is looked at.
        assert [e["type"] for e in response.json()["errors"]] == ["json_invalid"], response.text
        return True
    if response.status_code == 404:
        # e.g. `{invitation_id:uuid}` given a non-UUID: the path selects no route at all.
        assert case.meta is not None and case.meta.is_negative_at(ParameterLocation.PATH)
        return True
    return False


@schema.include(func=lambda ctx: _is_protected(ctx.operation)).parametrize()
@settings(_SETTINGS, max_examples=5)
def test_protected_routes_without_a_token(case: Any, target: Target) -> None:
    """No token: 401 `not_authenticated`, as documented."""
    case.headers = {k: v for k, v in (case.headers or {}).items() if k.lower() != "authorization"}
    response = case.call_and_validate(
        session=target.session,
        excluded_checks=_excluded_checks(case),
        additional_checks=_ADDITIONAL_CHECKS,
    )
    if not _refused_before_auth(case, response):
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "not_authenticated"


@schema.include(func=lambda ctx: _is_admin(ctx.operation)).parametrize()
@settings(_SETTINGS, max_examples=5)
def test_admin_routes_refuse_a_member(case: Any, target: Target) -> None:
    """A valid token outside the admin group: 403 `forbidden`, as documented."""
    response = case.call_and_validate(
        session=target.session,
        headers={"Authorization": f"Bearer {target.user.access_token}"},
        excluded_checks=_excluded_checks(case),
        additional_checks=_ADDITIONAL_CHECKS,
    )
    if _refused_before_auth(case, response):
        return
    if case.meta is not None and case.meta.is_negative_at(ParameterLocation.HEADER):
        # Schemathesis leaves out the Authorization header for a "missing header" case.
        assert response.status_code in (401, 403), response.text
        return
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "forbidden"


def test_document_is_the_served_one(target: Target) -> None:
    served = target.client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == _DOC_APP.openapi()
