"""Audit subjects named one way (issue 16): ``target`` is the Cognito username,
``target_email`` the email, whichever of the two the endpoint knew. One query by email and
one by username each find everything about a person; the writer fills the missing name with
at most one query per batch; a retried batch is not refused."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, select

from authsvc.audit.models import AuditEvent
from authsvc.audit.service import FAILURE, AuditLog
from authsvc.db import Database
from tests.admin.support import claims_of, user_path, username_of
from tests.audit.conftest import events
from tests.helpers import PASSWORD, latest_code, new_email, sign_in, sign_up
from tests.invitations.support import CHOSEN_PASSWORD, accept, invite_and_link

# -- through the API: one person, every flow -------------------------------------------------


def _ids(items: list[dict[str, Any]]) -> list[str]:
    return sorted(i["id"] for i in items)


class TestOnePersonOneQuery:
    def test_a_self_registered_person(self, client, outbox, cognito, audit_admin):
        email = new_email("subject")
        assert sign_up(client, email).status_code == 202
        code = latest_code(outbox, email, "sign_up_code")
        confirmed = client.post("/v1/auth/sign-up/confirm", json={"email": email, "code": code})
        assert confirmed.status_code == 204
        wrong = client.post("/v1/auth/sign-in", json={"email": email, "password": "Wr0ng-pass!"})
        assert wrong.status_code == 401
        tokens = sign_in(client, email)
        username = claims_of(tokens.access_token)["username"]
        assert username == username_of(cognito, email)
        profile = client.patch("/v1/me", json={"given_name": "Ada"}, headers=tokens.bearer)
        assert profile.status_code == 200, profile.text
        by_admin = client.patch(
            user_path(username), json={"family_name": "Admin"}, headers=audit_admin.bearer
        )
        assert by_admin.status_code == 200, by_admin.text
        assert client.post("/v1/auth/password/forgot", json={"email": email}).status_code == 202
        assert client.post("/v1/auth/sign-out", headers=tokens.bearer).status_code == 204

        by_email = events(client, audit_admin, target=email)
        by_username = events(client, audit_admin, target=username)
        assert [i["action"] for i in reversed(by_email)] == [
            "sign_up",
            "sign_up_confirmed",
            "sign_in_failed",
            "sign_in",
            "profile_updated",
            "user_updated",
            "password_reset_requested",
            "signed_out",
        ]
        assert _ids(by_username) == _ids(by_email)
        for item in by_email:
            assert (item["target"], item["target_email"]) == (username, email), item
        # The email is matched in lower case, as every email is stored.
        assert _ids(events(client, audit_admin, target=email.upper())) == _ids(by_email)

    def test_an_invited_person(self, client, outbox, audit_admin):
        email = new_email("subject-invitee")
        invitation, token = invite_and_link(client, audit_admin, outbox, email)
        accepted = accept(client, token)
        assert accepted.status_code == 201, accepted.text
        username = claims_of(accepted.json()["access_token"])["username"]
        tokens = sign_in(client, email, CHOSEN_PASSWORD)
        assert client.post("/v1/auth/sign-out", headers=tokens.bearer).status_code == 204

        by_email = events(client, audit_admin, target=email)
        assert [i["action"] for i in reversed(by_email)] == [
            "invitation_created",
            "invitation_accepted",
            "sign_in",
            "signed_out",
        ]
        created = by_email[-1]
        assert created["detail"]["invitation_id"] == invitation["id"]
        # No account existed when the invitation was made: it has no username.
        assert (created["target"], created["target_email"]) == (None, email)
        by_username = events(client, audit_admin, target=username)
        assert _ids(by_username) == _ids(by_email[:-1])
        for item in by_username:
            assert (item["target"], item["target_email"]) == (username, email), item

    def test_an_admin_path_naming_the_user_by_email(self, client, outbox, cognito, audit_admin):
        email = new_email("subject-aliased")
        assert sign_up(client, email).status_code == 202
        code = latest_code(outbox, email, "sign_up_code")
        assert (
            client.post("/v1/auth/sign-up/confirm", json={"email": email, "code": code}).status_code
            == 204
        )
        username = username_of(cognito, email)
        response = client.post(user_path(email, "sign-out"), headers=audit_admin.bearer)
        assert response.status_code == 204, response.text

        (item,) = [
            i
            for i in events(client, audit_admin, target=username)
            if i["action"] == "user_signed_out"
        ]
        assert (item["target"], item["target_email"]) == (username, email)

    def test_an_unknown_address_has_no_username(self, client, audit_admin):
        email = new_email("subject-nobody")
        response = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert response.status_code == 401
        (item,) = events(client, audit_admin, target=email)
        assert (item["action"], item["target"], item["target_email"]) == (
            "sign_in_failed",
            None,
            email,
        )


# -- the writer on its own ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def live_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


class Lookups:
    """Counts the queries that read ``audit_event`` (the writer's subject look-ups)."""

    def __init__(self, db: Database) -> None:
        self.count = 0
        self.db = db

    def __enter__(self) -> Lookups:
        event.listen(self.db.engine, "before_cursor_execute", self._seen)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.db.engine, "before_cursor_execute", self._seen)

    def _seen(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "audit_event" in statement:
            self.count += 1


def _people(n: int) -> list[tuple[str, str]]:
    return [(str(uuid.uuid4()), new_email("writer")) for _ in range(n)]


def _stored(db: Database, ids: list[uuid.UUID]) -> dict[uuid.UUID, AuditEvent]:
    with db.sessions() as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.id.in_(ids)))
        return {r.id: r for r in rows}


def _recorded_ids(log: AuditLog) -> list[uuid.UUID]:
    return [row["id"] for row in log._buffer]


def _flushed_subjects(db: Database, log: AuditLog) -> list[tuple[str | None, str | None]]:
    """Flush what ``log`` holds; each event's (target, target_email) as stored, in order."""
    ids = _recorded_ids(log)
    log.flush()
    stored = _stored(db, ids)
    return [(stored[i].target, stored[i].target_email) for i in ids]


def test_one_lookup_per_batch_not_per_event(live_db: Database) -> None:
    people = _people(1000)
    seed = AuditLog(live_db)
    for username, email in people:
        seed.record("sign_up", target=username, target_email=email)
    seed.flush()

    log = AuditLog(live_db, batch_size=500)  # a new process: nothing remembered
    for i, (username, email) in enumerate(people):  # each event another person
        if i % 2:
            log.record("signed_out", actor=username, target=username)
        else:
            log.record("sign_in_failed", outcome=FAILURE, target_email=email)
    ids = _recorded_ids(log)
    with Lookups(live_db) as lookups:
        assert log.flush() == 1000
    assert lookups.count == 2  # two batches of 500, one look-up each
    stored = _stored(live_db, ids)
    assert [(stored[i].target, stored[i].target_email) for i in ids] == people

    # Names already resolved are remembered: the next batch needs no look-up at all. (Only
    # the side looked up: a username's email found by a look-up by address could be stale.)
    for i, (username, email) in enumerate(people):
        if i % 2:
            log.record("profile_updated", actor=username, target=username)
        else:
            log.record("password_reset_requested", target_email=email)
    with Lookups(live_db) as lookups:
        log.flush()
    assert lookups.count == 0


def test_an_event_names_only_what_was_known_before_it(live_db: Database) -> None:
    username, email = _people(1)[0]
    log = AuditLog(live_db)
    log.record("sign_in_failed", outcome=FAILURE, target_email=email)  # no account yet
    log.record("sign_up", target=username, target_email=email)
    log.record("sign_up_confirmed", target_email=email)
    log.record("signed_out", target=username)
    assert _flushed_subjects(live_db, log) == [
        (None, email),
        (username, email),
        (username, email),
        (username, email),
    ]


def test_the_newest_pair_wins(live_db: Database) -> None:
    # An address whose account was deleted and registered again: the new account.
    (old, email), (new, _) = _people(2)
    log = AuditLog(live_db)
    log.record("sign_up", target=old, target_email=email)
    log.flush()
    log.record("sign_up", target=new, target_email=email)
    log.flush()

    later = AuditLog(live_db)
    later.record("sign_in_failed", outcome=FAILURE, target_email=email)
    later.record("signed_out", target=old)
    assert _flushed_subjects(live_db, later) == [
        (new, email),
        (old, email),
    ]


def test_a_look_up_does_not_overwrite_a_newer_pair(live_db: Database) -> None:
    # The writer knows the address's new account; an event about the old account looks up
    # the old pair, which must not hand the address back to the old account.
    (old, email), (new, _) = _people(2)
    seed = AuditLog(live_db)
    seed.record("sign_up", target=old, target_email=email)
    seed.flush()
    log = AuditLog(live_db)
    log.record("sign_up", target=new, target_email=email)
    log.flush()
    log.record("user_deleted", actor="admin", target=old)
    log.record("sign_in_failed", outcome=FAILURE, target_email=email)
    assert _flushed_subjects(live_db, log) == [
        (old, email),
        (new, email),
    ]


def test_an_email_given_as_the_target_is_taken_as_the_email(live_db: Database) -> None:
    email = new_email("writer")
    log = AuditLog(live_db)
    log.record("user_disabled", actor="admin", target=email.upper())
    (row,) = log._buffer
    assert (row["target"], row["target_email"]) == (None, email)


def test_a_retried_batch_is_not_refused(live_db: Database) -> None:
    # The commit went through but its answer was lost: the writer puts the batch back and
    # writes it again. The rows already there are skipped, not refused (and not dropped).
    people = _people(3)
    log = AuditLog(live_db)
    for username, email in people:
        log.record("sign_up", target=username, target_email=email)
    batch = list(log._buffer)
    assert log.flush() == 3
    log._buffer.extend(batch)
    log.record("sign_up_confirmed", target_email=people[0][1])
    assert log.flush() == 4
    assert (log.dropped, log.write_failures) == (0, 0)
    stored = _stored(live_db, [r["id"] for r in batch])
    assert len(stored) == 3
    with live_db.sessions() as session:
        confirmed = session.scalars(
            select(AuditEvent).where(
                AuditEvent.target_email == people[0][1],
                AuditEvent.action == "sign_up_confirmed",
                AuditEvent.occurred_at >= datetime.now(UTC) - timedelta(minutes=5),
            )
        ).all()
    assert [(r.target, r.target_email) for r in confirmed] == [people[0]]
