"""Revoke racing accept (issue 11, item 10): the revoke is one conditional UPDATE, so a claim
that commits between an admin's read and write wins on SQLite too (where ``FOR UPDATE`` does
nothing), and a user made by an acceptance whose row ended revoked is cleaned up by the
reconciler instead of lingering and blocking a re-invitation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from authsvc import migrate
from authsvc.errors import AuthSvcError
from authsvc.invitations.models import PENDING, REVOKED
from authsvc.invitations.repository import InvitationRepository
from authsvc.invitations.service import utcnow
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import assert_problem, new_email
from tests.invitations.support import (
    INVITATIONS,
    accept,
    get_row,
    invite,
    invite_and_link,
    make_admin,
    next_token,
    set_row,
    state_of,
    users_with_email,
)


def create_invitee(cognito, email: str) -> dict:
    """The user an acceptance makes before it records it (status FORCE_CHANGE_PASSWORD)."""
    user = cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        TemporaryPassword="Temp-Passw0rd!" + uuid.uuid4().hex[:6],
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Invitee"},
        ],
    )["User"]
    return user


def lapse_claim(client, invitation_id) -> uuid.UUID:
    """A claim left by an acceptance that died, its lease run out a moment ago."""
    claim_id = uuid.uuid4()
    set_row(
        client,
        invitation_id,
        claim_id=claim_id,
        claimed_until=datetime.now(UTC) - timedelta(seconds=1),
    )
    return claim_id


@pytest.fixture(scope="module")
def sqlite_client(cognito, tmp_path_factory) -> Iterator[TestClient]:
    """The app on a SQLite file, where row locks do not exist."""
    url = f"sqlite:///{Path(tmp_path_factory.mktemp('sqlite')) / 'authsvc.db'}"
    migrate.upgrade(url)
    app = create_app(make_settings(cognito, url))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


class TestRevokeOnSqlite:
    def test_a_claim_committed_after_the_admin_read_wins(self, sqlite_client, cognito):
        client = sqlite_client
        state = state_of(client)
        admin = make_admin(client, state.outbox, cognito)
        invitation, _ = invite_and_link(client, admin, state.outbox, new_email("sqlite-race"))
        id = uuid.UUID(invitation["id"])
        service = state.invitations
        claim_id = uuid.uuid4()
        original = service._find

        def find_then_claim(session, found_id, *, lock=False):
            row = original(session, found_id, lock=lock)
            # An accept claims the row between the admin's read and the admin's write.
            with state.db.sessions() as other, other.begin():
                now = utcnow()
                assert InvitationRepository(other).claim(
                    found_id, claim_id, now, now + timedelta(minutes=5)
                )
            return row

        service._find = find_then_claim  # type: ignore[method-assign]
        try:
            with (
                state.db.sessions() as session,
                session.begin(),
                pytest.raises(AuthSvcError) as refused,
            ):
                service.revoke(session, id)
        finally:
            service._find = original  # type: ignore[method-assign]
        assert refused.value.code == "conflict"
        row = get_row(client, id)
        assert (row.status, row.claim_id) == (PENDING, claim_id), "the revoke overwrote a claim"

    def test_revoke_still_works_and_is_idempotent(self, sqlite_client, cognito):
        client = sqlite_client
        state = state_of(client)
        admin = make_admin(client, state.outbox, cognito)
        invitation, token = invite_and_link(client, admin, state.outbox, new_email("sqlite-rv"))
        for _ in range(2):
            response = client.delete(f"{INVITATIONS}/{invitation['id']}", headers=admin.bearer)
            assert response.status_code == 204
        assert get_row(client, invitation["id"]).status == REVOKED
        assert_problem(accept(client, token), 400, "invalid_invitation")


class TestOrphanOfARevokedAcceptance:
    def test_reconcile_deletes_a_user_the_dead_acceptance_never_recorded(
        self, client, admin, outbox, cognito
    ):
        email = new_email("unrecorded")
        invitation, old_token = invite_and_link(client, admin, outbox, email)
        lapse_claim(client, invitation["id"])
        create_invitee(cognito, email)  # died after creating the user, before recording it
        response = client.delete(f"{INVITATIONS}/{invitation['id']}", headers=admin.bearer)
        assert response.status_code == 204

        counts = state_of(client).invitations.reconcile()
        assert counts["users_deleted"] >= 1
        assert users_with_email(cognito, email) == []
        row = get_row(client, invitation["id"])
        assert (row.status, row.claim_id, row.user_sub) == (REVOKED, None, None)

        # The address is free again: a new invitation is accepted.
        assert invite(client, admin, email).status_code == 201
        accepted = accept(client, next_token(outbox, email, old_token))
        assert accepted.status_code == 201, accepted.text
        assert len(users_with_email(cognito, email)) == 1

    def test_a_saga_whose_row_was_revoked_under_it_leaves_its_user_to_the_reconciler(
        self, client, admin, outbox, cognito
    ):
        email = new_email("revoked-mid")
        invitation, token = invite_and_link(client, admin, outbox, email)
        service = state_of(client).invitations
        original = service.fault

        def revoke_after_user_created(step: str) -> None:
            if step == "user_created":
                # The lease ran out (a stalled process) and an admin revoked the row.
                set_row(client, invitation["id"], claimed_until=utcnow() - timedelta(seconds=1))
                with service.db.sessions() as session, session.begin():
                    service.revoke(session, uuid.UUID(invitation["id"]))

        service.fault = revoke_after_user_created
        try:
            assert_problem(accept(client, token), 409, "conflict")
        finally:
            service.fault = original
        row = get_row(client, invitation["id"])
        assert row.status == REVOKED and row.user_sub is not None
        assert len(users_with_email(cognito, email)) == 1

        counts = service.reconcile()
        assert counts["users_deleted"] >= 1
        assert users_with_email(cognito, email) == []
        assert invite(client, admin, email).status_code == 201
        accepted = accept(client, next_token(outbox, email, token))
        assert accepted.status_code == 201, accepted.text

    def test_a_user_a_pending_invitation_is_making_is_left_alone(
        self, client, admin, outbox, cognito
    ):
        email = new_email("inflight")
        old, old_token = invite_and_link(client, admin, outbox, email)
        lapse_claim(client, old["id"])
        assert client.delete(f"{INVITATIONS}/{old['id']}", headers=admin.bearer).status_code == 204
        new = invite(client, admin, email).json()
        token = next_token(outbox, email, old_token)
        lapse_claim(client, new["id"])
        user = create_invitee(cognito, email)  # made by the new invitation's acceptance

        state_of(client).invitations.reconcile()
        assert [u["Username"] for u in users_with_email(cognito, email)] == [user["Username"]]
        assert get_row(client, old["id"]).claim_id is None
        accepted = accept(client, token)
        assert accepted.status_code == 201, accepted.text
