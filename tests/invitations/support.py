"""Helpers for the invitation tests: an admin, the emailed link, and direct access to the
``invitation`` rows (to age them or fake an acceptance a dead process left behind)."""

from __future__ import annotations

import time
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from authsvc.dev.outbox import DevOutbox
from authsvc.invitations.models import Invitation
from authsvc.state import AppState
from tests.helpers import Tokens, confirmed_user, sign_in

INVITATIONS = "/v1/invitations"
LINK_PREFIX = "http://app.example.test/accept-invitation#token="
CHOSEN_PASSWORD = "Chosen-Passw0rd!"


def state_of(client: TestClient) -> AppState:
    state: AppState = client.app.state.authsvc  # type: ignore[attr-defined]
    return state


def make_admin(client: TestClient, outbox: DevOutbox, cognito: Any) -> Tokens:
    email = confirmed_user(client, outbox)
    cognito.client.admin_add_user_to_group(
        UserPoolId=cognito.pool.user_pool_id, Username=email, GroupName="admin"
    )
    return sign_in(client, email)


def invite(client: TestClient, admin: Tokens, email: str, **body: Any) -> Any:
    body.setdefault("family_name", "Invitee")
    return client.post(INVITATIONS, json={"email": email, **body}, headers=admin.bearer)


def wait_link(
    outbox: DevOutbox, email: str, *, exclude: frozenset[str] = frozenset(), timeout: float = 60
) -> str:
    """The newest invitation link emailed to ``email`` that is not in ``exclude``.

    The outbox worker runs in the app's background thread: poll, don't sleep blindly.
    """
    deadline = time.monotonic() + timeout
    while True:
        for message in outbox.list(to=email, kind="invitation"):
            if message.link is not None and message.link not in exclude:
                return message.link
        if time.monotonic() > deadline:
            raise AssertionError(f"no new invitation email for {email} within {timeout}s")
        time.sleep(0.05)


def token_of(link: str) -> str:
    assert link.startswith(LINK_PREFIX), link
    return link[len(LINK_PREFIX) :]


def invite_and_link(
    client: TestClient, admin: Tokens, outbox: DevOutbox, email: str, **body: Any
) -> tuple[dict[str, Any], str]:
    """Create an invitation; return it and its token (read from the dev outbox)."""
    response = invite(client, admin, email, **body)
    assert response.status_code == 201, response.text
    return response.json(), token_of(wait_link(outbox, email))


def set_row(client: TestClient, invitation_id: str | uuid.UUID, **values: Any) -> None:
    """Write an invitation row directly (age it, fake a lease left by a dead process)."""
    db = state_of(client).db
    with db.sessions() as session, session.begin():
        result = session.execute(
            update(Invitation)
            .where(Invitation.id == uuid.UUID(str(invitation_id)))
            .values(**values)
        )
        assert result.rowcount == 1  # type: ignore[attr-defined]


def get_row(client: TestClient, invitation_id: str | uuid.UUID) -> Invitation:
    with state_of(client).db.sessions() as session:
        row = session.get(Invitation, uuid.UUID(str(invitation_id)))
        assert row is not None
        return row


def users_with_email(cognito: Any, email: str) -> list[dict[str, Any]]:
    users: list[dict[str, Any]] = cognito.client.list_users(
        UserPoolId=cognito.pool.user_pool_id, Filter=f'email = "{email}"'
    )["Users"]
    return users


def accept(client: TestClient, token: str, password: str = CHOSEN_PASSWORD, **body: Any) -> Any:
    return client.post(f"{INVITATIONS}/accept", json={"token": token, "password": password, **body})


def lookup(client: TestClient, token: str) -> Any:
    return client.post(f"{INVITATIONS}/lookup", json={"token": token})


def next_token(outbox: DevOutbox, email: str, *old_tokens: str) -> str:
    """The token of the newest link emailed to ``email`` other than ``old_tokens``."""
    seen = frozenset(LINK_PREFIX + token for token in old_tokens)
    return token_of(wait_link(outbox, email, exclude=seen))
