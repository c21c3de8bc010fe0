"""Cognito faults through the strict layer: an unknown 5xx is an outage (503, Retry-After),
and admin actions survive a failing AdminUserGlobalSignOut (issue 10, items 4 and 5): the
change happens, the audit says success, tokens die locally at once, and the Cognito sign-out
is queued and retried."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.audit.conftest import table_rows
from tests.helpers import PASSWORD, Tokens, assert_problem, new_email, sign_in, signed_in_user
from tests.invitations.support import make_admin
from tests.strict.layer import StrictCognito

USERS = "/v1/admin/users"
NEW_PASSWORD = "Adm1n-Set-Passw0rd!"


@pytest.fixture(scope="module")
def admin(app_client, cognito) -> Tokens:
    return make_admin(app_client, app_client.app.state.authsvc.outbox, cognito)


@pytest.fixture
def fault(strict: StrictCognito) -> Iterator[StrictCognito]:
    yield strict
    strict.faults.clear()


def state(client) -> Any:
    return client.app.state.authsvc


class TestUnknownServerError:
    def test_unknown_5xx_code_is_503_with_retry_after(self, client, outbox, fault):
        email, _ = signed_in_user(client, outbox)
        fault.faults["InitiateAuth"] = (500, "SomethingNobodyMappedException")
        response = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert_problem(response, 503, "upstream_unavailable")
        assert int(response.headers["Retry-After"]) >= 1
        assert "SomethingNobodyMapped" not in response.text
        fault.faults.clear()
        sign_in(client, email)


@pytest.mark.parametrize(
    ("action", "audit_action"),
    [
        ("delete", "user_deleted"),
        ("disable", "user_disabled"),
        ("password", "user_password_set"),
        ("sign-out", "user_signed_out"),
        ("group", "user_removed_from_group"),
    ],
)
def test_admin_action_survives_a_failing_cognito_sign_out(
    client, outbox, cognito, admin, fault, action, audit_action
):
    email, tokens = signed_in_user(client, outbox)
    username = cognito.client.admin_get_user(UserPoolId=cognito.pool.user_pool_id, Username=email)[
        "Username"
    ]
    if action == "group":
        cognito.client.admin_add_user_to_group(
            UserPoolId=cognito.pool.user_pool_id, Username=username, GroupName="admin"
        )
    fault.faults["AdminUserGlobalSignOut"] = (500, "InternalErrorException")

    path = f"{USERS}/{username}"
    if action == "group":
        response = client.delete(f"{path}/groups/admin", headers=admin.bearer)
    elif action == "delete":
        response = client.delete(path, headers=admin.bearer)
    elif action == "password":
        response = client.post(
            f"{path}/password",
            json={"password": NEW_PASSWORD, "permanent": True},
            headers=admin.bearer,
        )
    else:
        response = client.post(f"{path}/{action}", headers=admin.bearer)
    # The change happened and the admin is told so; the audit log says success.
    assert response.status_code == 204, response.text
    rows = [r for r in table_rows(client) if r.target == username and r.action == audit_action]
    assert [r.outcome for r in rows] == ["success"]
    # The user's access tokens are refused at once (local revocation) ...
    session = client.get("/v1/auth/session", headers=tokens.bearer)
    assert_problem(session, 401, "invalid_token")
    # ... and the Cognito sign-out waits for a retry.
    auth = state(client).auth
    assert username in auth.pending_sign_outs()
    assert auth.retry_pending_sign_outs() == 0  # still failing: kept

    fault.faults.clear()
    auth.retry_pending_sign_outs()
    assert username not in auth.pending_sign_outs()
    if action == "delete":
        assert_problem(client.get(path, headers=admin.bearer), 404, "not_found")
        return
    # The retried sign-out reached Cognito: the refresh token is dead there too.
    refreshed = client.post("/v1/auth/refresh", json={"refresh_token": tokens.refresh_token})
    assert_problem(refreshed, 401, "invalid_token")
    if action == "password":
        sign_in(client, email, NEW_PASSWORD)


def test_unknown_user_is_not_queued(client, admin, fault):
    fault.faults.clear()
    response = client.post(f"{USERS}/{new_email('ghost')}/sign-out", headers=admin.bearer)
    assert_problem(response, 404, "not_found")
