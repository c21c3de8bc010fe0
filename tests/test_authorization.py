"""Every admin route needs the admin group, and the route list comes from the OpenAPI document.

The table is what ``client.app.openapi()`` says exists under ``/v1/admin/`` plus the admin
invitation routes (every ``/v1/invitations*`` route except ``lookup`` and ``accept``). A
route added later without the admin dependency fails here without anyone editing this file:
``test_the_check_catches_an_unguarded_route`` shows that on an app with such a route bolted on.

For each route and method:
- no token → 401 ``not_authenticated``;
- a valid token of a user outside the admin group → 403 ``forbidden``;
- that user's token with ``admin`` added to ``cognito:groups`` and re-signed with a fresh RSA
  key under moto's ``kid`` ("dummy") → 401 ``invalid_token``;
- an admin token → neither 401 nor 403 (nor a 5xx).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from authsvc.main import create_app
from tests.admin.support import make_admin, state_of, unthrottled_client, username_of
from tests.helpers import Tokens, confirmed_user, new_email, sign_in

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PUBLIC_INVITATION_PATHS = {"/v1/invitations/lookup", "/v1/invitations/accept"}

# Minimal valid bodies, by (METHOD, path template). A route whose OpenAPI operation requires
# a body must have an entry (test_every_route_with_a_body_has_one keeps this table honest).
BODIES: dict[tuple[str, str], Callable[[], Any]] = {
    ("POST", "/v1/invitations"): lambda: {"email": new_email("authz"), "family_name": "Authz"},
    ("PATCH", "/v1/admin/users/{username}"): lambda: {"given_name": "Authz"},
    ("POST", "/v1/admin/users/{username}/password"): lambda: {
        "password": "Authz-Passw0rd!",
        "permanent": True,
    },
}


def is_admin_path(path: str) -> bool:
    if path.startswith("/v1/admin/"):
        return True
    return path.startswith("/v1/invitations") and path not in PUBLIC_INVITATION_PATHS


def admin_operations(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    return sorted(
        (method.upper(), path)
        for path, item in openapi["paths"].items()
        if is_admin_path(path)
        for method in item
        if method in HTTP_METHODS
    )


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also inside routers FastAPI includes lazily (``original_router``)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (router := getattr(route, "original_router", None)) is not None:
            yield from api_routes(router.routes)


def forge_admin(access_token: str) -> str:
    """The same claims plus the admin group, signed with a key nobody published."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    claims["cognito:groups"] = [*claims.get("cognito:groups", []), "admin"]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "dummy"})


def fill(path: str, username: str) -> str:
    return (
        path.replace("{username}", username)
        .replace("{invitation_id}", str(uuid.uuid4()))
        .replace("{group}", "admin")
    )


def call(client: TestClient, method: str, path: str, headers: dict[str, str], username: str):
    make_body = BODIES.get((method, path))
    kwargs: dict[str, Any] = {"headers": headers}
    if make_body is not None:
        kwargs["json"] = make_body()
    return client.request(method, fill(path, username), **kwargs)


def check(
    client: TestClient,
    operations: list[tuple[str, str]],
    headers: dict[str, str],
    expect: Callable[[Any], str | None],
    username: Callable[[], str],
) -> list[str]:
    """Call every operation; return one line per operation that broke the expectation."""
    failures = []
    for method, path in operations:
        response = call(client, method, path, headers, username())
        problem = expect(response)
        if problem:
            failures.append(f"{method} {path}: {problem} ({response.status_code} {response.text})")
    return failures


def problem(status: int, code: str) -> Callable[[Any], str | None]:
    def expect(response: Any) -> str | None:
        if response.status_code != status:
            return f"expected {status} {code}"
        if not response.headers.get("content-type", "").startswith("application/problem+json"):
            return "not a problem document"
        if response.json().get("code") != code:
            return f"expected code {code}"
        return None

    return expect


def allowed(response: Any) -> str | None:
    if response.status_code in (401, 403) or response.status_code >= 500:
        return "an admin was not served"
    return None


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app_client(cognito: Any, database_url: str) -> Iterator[TestClient]:
    """The shared app without the outbound budget: the table fires admin calls in a burst."""
    yield from unthrottled_client(cognito, database_url)


@pytest.fixture(scope="module")
def operations(app_client: TestClient) -> list[tuple[str, str]]:
    return admin_operations(app_client.app.openapi())


@pytest.fixture(scope="module")
def admin(app_client: TestClient, cognito: Any) -> Tokens:
    box = state_of(app_client).outbox
    assert box is not None
    return make_admin(app_client, box, cognito)[1]


@pytest.fixture(scope="module")
def member(app_client: TestClient) -> Tokens:
    box = state_of(app_client).outbox
    assert box is not None
    return sign_in(app_client, confirmed_user(app_client, box, email=new_email("member")))


@pytest.fixture
def victim(client: TestClient, outbox: Any, cognito: Any) -> Callable[[], str]:
    """A fresh user for every call: admin actions on one never disturb the next."""
    return lambda: username_of(cognito, confirmed_user(client, outbox, email=new_email("victim")))


def assert_untouched(client: TestClient, admin: Tokens, username: str) -> None:
    """The refused calls changed nothing about the user they named."""
    response = client.get(f"/v1/admin/users/{username}", headers=admin.bearer)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["enabled"], body["groups"], body["given_name"]) == (True, [], None)


@pytest.fixture(scope="module")
def bystander(app_client: TestClient, cognito: Any) -> str:
    """For the refused calls: nothing may happen to this user, it just fills {username}."""
    box = state_of(app_client).outbox
    assert box is not None
    return username_of(cognito, confirmed_user(app_client, box, email=new_email("bystander")))


# -- the table -----------------------------------------------------------------------------


def test_the_route_list(operations, client):
    assert operations, "no admin route found in the OpenAPI document"
    paths = {path for _, path in operations}
    assert "/v1/admin/users" in paths
    assert "/v1/admin/audit-events" in paths
    assert "/v1/invitations" in paths
    assert "/v1/admin/users/{username}" in paths
    assert not paths & PUBLIC_INVITATION_PATHS
    # Nothing hides from the table by leaving the schema (include_in_schema=False).
    routed = {
        (method, route.path_format)  # without converters ({id:uuid} → {id}), as OpenAPI
        for route in api_routes(client.app.routes)
        if is_admin_path(route.path_format)
        for method in route.methods
        if method != "HEAD"
    }
    assert routed == set(operations)


def test_every_route_with_a_body_has_one(operations, client):
    paths = client.app.openapi()["paths"]
    needing = {
        (method, path)
        for method, path in operations
        if paths[path][method.lower()].get("requestBody", {}).get("required")
    }
    assert needing <= BODIES.keys(), f"add a minimal body for {sorted(needing - BODIES.keys())}"


def test_no_token_is_not_authenticated(client, operations, admin, bystander):
    failures = check(client, operations, {}, problem(401, "not_authenticated"), lambda: bystander)
    assert not failures, "\n".join(failures)
    assert_untouched(client, admin, bystander)


def test_a_member_outside_the_admin_group_is_forbidden(
    client, operations, admin, member, bystander
):
    failures = check(
        client, operations, member.bearer, problem(403, "forbidden"), lambda: bystander
    )
    assert not failures, "\n".join(failures)
    assert_untouched(client, admin, bystander)


def test_a_forged_groups_claim_is_an_invalid_token(client, operations, admin, member, bystander):
    forged = forge_admin(member.access_token)
    assert jwt.get_unverified_header(forged)["kid"] == "dummy"
    assert "admin" in jwt.decode(forged, options={"verify_signature": False})["cognito:groups"]
    headers = {"Authorization": f"Bearer {forged}"}
    failures = check(client, operations, headers, problem(401, "invalid_token"), lambda: bystander)
    assert not failures, "\n".join(failures)
    # The genuine token still works: the 401s were for the forgery, not a revoked session.
    assert client.get("/v1/auth/session", headers=member.bearer).status_code == 200
    assert_untouched(client, admin, bystander)


def test_an_id_token_of_an_admin_is_an_invalid_token(client, operations, admin, bystander):
    headers = {"Authorization": f"Bearer {admin.id_token}"}
    failures = check(client, operations, headers, problem(401, "invalid_token"), lambda: bystander)
    assert not failures, "\n".join(failures)
    assert_untouched(client, admin, bystander)


def test_an_admin_is_served(client, operations, admin, victim):
    failures = check(client, operations, admin.bearer, allowed, victim)
    assert not failures, "\n".join(failures)
    assert client.get("/v1/auth/session", headers=admin.bearer).status_code == 200


# -- the table catches what it should ------------------------------------------------------


def test_the_check_catches_an_unguarded_route(settings, operations):
    app = create_app(settings)

    @app.get("/v1/admin/forgotten")
    def forgotten() -> dict[str, str]:
        return {"secret": "everyone can read this"}

    @app.post("/v1/invitations/{invitation_id}/forgotten")
    def forgotten_too(invitation_id: uuid.UUID) -> dict[str, str]:
        return {}

    try:
        found = admin_operations(app.openapi())
        assert ("GET", "/v1/admin/forgotten") in found
        assert ("POST", "/v1/invitations/{invitation_id}/forgotten") in found
        assert set(operations) < set(found)
        unguarded = TestClient(app, raise_server_exceptions=False)  # no lifespan needed
        failures = check(unguarded, found, {}, problem(401, "not_authenticated"), lambda: "someone")
        assert sorted(line.split(":")[0] for line in failures) == [
            "GET /v1/admin/forgotten",
            "POST /v1/invitations/{invitation_id}/forgotten",
        ]
    finally:
        state_of_app = app.state.authsvc
        state_of_app.db.dispose()
