"""Admin actions that end a user's sessions (DESIGN §5): afterwards the user's refresh token
is refused and the access token they held is refused too, although access tokens are
verified locally and Cognito's revocation alone would not reach them."""

from __future__ import annotations

import pytest

from tests.admin.support import user_path, username_of
from tests.helpers import PASSWORD, Tokens, assert_problem, confirmed_user, sign_in

SESSION = "/v1/auth/session"
REFRESH = "/v1/auth/refresh"
NEW_PASSWORD = "N3w-Admin-Set!"


def refresh(client, tokens: Tokens):
    return client.post(REFRESH, json={"refresh_token": tokens.refresh_token})


def ends_sessions(client, admin, username: str, action: str) -> None:
    if action == "sign-out":
        response = client.post(user_path(username, "sign-out"), headers=admin.bearer)
    elif action == "disable":
        response = client.post(user_path(username, "disable"), headers=admin.bearer)
    elif action == "delete":
        response = client.delete(user_path(username), headers=admin.bearer)
    elif action == "set-password":
        response = client.post(
            user_path(username, "password"),
            json={"password": NEW_PASSWORD, "permanent": True},
            headers=admin.bearer,
        )
    else:  # pragma: no cover
        raise AssertionError(action)
    assert response.status_code == 204, response.text


ACTIONS = ["sign-out", "disable", "delete", "set-password"]


@pytest.mark.parametrize("action", ACTIONS)
def test_old_tokens_are_refused(client, outbox, cognito, admin, action):
    email = confirmed_user(client, outbox)
    username = username_of(cognito, email)
    tokens = sign_in(client, email)
    # Live before: the session answers and the refresh token works.
    assert client.get(SESSION, headers=tokens.bearer).status_code == 200
    refreshed = refresh(client, tokens)
    assert refreshed.status_code == 200, refreshed.text
    refreshed_access = refreshed.json()["access_token"]

    ends_sessions(client, admin, username, action)

    assert_problem(refresh(client, tokens), 401, "invalid_token")
    assert_problem(client.get(SESSION, headers=tokens.bearer), 401, "invalid_token")
    # The access token minted by the refresh before the action dies too.
    stale = client.get(SESSION, headers={"Authorization": f"Bearer {refreshed_access}"})
    assert_problem(stale, 401, "invalid_token")
    assert_problem(client.get("/v1/me", headers=tokens.bearer), 401, "invalid_token")


@pytest.mark.parametrize("action", ["sign-out", "set-password"])
def test_a_new_sign_in_works_right_after(client, outbox, cognito, admin, action):
    email = confirmed_user(client, outbox)
    username = username_of(cognito, email)
    sign_in(client, email)
    ends_sessions(client, admin, username, action)
    password = NEW_PASSWORD if action == "set-password" else PASSWORD
    fresh = sign_in(client, email, password)
    assert client.get(SESSION, headers=fresh.bearer).status_code == 200
    assert refresh(client, fresh).status_code == 200


def test_enable_does_not_bring_old_tokens_back(client, outbox, cognito, admin):
    email = confirmed_user(client, outbox)
    username = username_of(cognito, email)
    tokens = sign_in(client, email)
    ends_sessions(client, admin, username, "disable")
    assert client.post(user_path(username, "enable"), headers=admin.bearer).status_code == 204
    assert_problem(refresh(client, tokens), 401, "invalid_token")
    assert_problem(client.get(SESSION, headers=tokens.bearer), 401, "invalid_token")
    fresh = sign_in(client, email)
    assert client.get(SESSION, headers=fresh.bearer).status_code == 200


def test_other_users_sessions_are_untouched(client, outbox, cognito, admin):
    victim = confirmed_user(client, outbox)
    bystander = sign_in(client, confirmed_user(client, outbox))
    sign_in(client, victim)
    ends_sessions(client, admin, username_of(cognito, victim), "sign-out")
    assert client.get(SESSION, headers=bystander.bearer).status_code == 200
    assert refresh(client, bystander).status_code == 200
    assert client.get(SESSION, headers=admin.bearer).status_code == 200
