"""Accepting an invitation: the full flow over HTTP against moto, concurrency against a real
uvicorn server, crashes injected between saga steps, and the reconciler (DESIGN §4)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import jwt
import pytest
import uvicorn
from sqlalchemy import text

from authsvc import migrate
from authsvc.db import Database
from authsvc.errors import AuthSvcError
from authsvc.invitations.models import PENDING, REVOKED, Invitation
from authsvc.invitations.schemas import AcceptRequest
from authsvc.invitations.service import SAGA_STEPS, hash_token
from authsvc.main import create_app
from tests.conftest import create_database, drop_database, make_settings
from tests.helpers import assert_problem, new_email, sign_in
from tests.invitations.support import (
    CHOSEN_PASSWORD,
    INVITATIONS,
    LINK_PREFIX,
    accept,
    get_row,
    invite,
    invite_and_link,
    lookup,
    next_token,
    set_row,
    state_of,
    users_with_email,
    wait_link,
)

SECRET_KEY = "test-secret-key-for-the-cli-run"


def sub_of(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def assert_opaque_500(response) -> None:
    body = assert_problem(response, 500, "internal_error")
    assert body["detail"] == "An unexpected error occurred."
    assert "RuntimeError" not in response.text and "injected" not in response.text


class TestAcceptFlow:
    def test_invite_lookup_accept_sign_in(self, client, admin, outbox, cognito):
        email = new_email("flow")
        response = invite(
            client,
            admin,
            email,
            given_name="Ada",
            family_name="Lovelace",
            attributes={"test_attribute1": "engine"},
            groups=["admin"],
        )
        assert response.status_code == 201, response.text
        invitation = response.json()

        link = wait_link(outbox, email)
        assert link.startswith(LINK_PREFIX)
        token = link.removeprefix(LINK_PREFIX)
        message = outbox.list(to=email, kind="invitation")[0]
        assert link in message.body

        found = lookup(client, token)
        assert found.status_code == 200, found.text
        assert found.json() == {
            "email": email,
            "given_name": "Ada",
            "family_name": "Lovelace",
            "expires_at": invitation["expires_at"],
        }

        weak = accept(client, token, password="weak")
        assert_problem(weak, 422, "invalid_password")
        with pytest.raises(cognito.client.exceptions.UserNotFoundException):
            cognito.client.admin_get_user(UserPoolId=cognito.pool.user_pool_id, Username=email)
        assert get_row(client, invitation["id"]).claim_id is None

        accepted = accept(client, token)
        assert accepted.status_code == 201, accepted.text
        assert accepted.headers["cache-control"] == "no-store"
        tokens = accepted.json()
        assert tokens["kind"] == "tokens"
        assert tokens["token_type"] == "Bearer"
        assert {"access_token", "id_token", "refresh_token", "expires_in"} <= tokens.keys()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        session = client.get("/v1/auth/session", headers=bearer)
        assert session.status_code == 200, session.text
        assert session.json()["groups"] == ["admin"]

        me = client.get("/v1/me", headers=bearer)
        assert me.status_code == 200, me.text
        profile = me.json()
        assert profile["email"] == email
        assert profile["email_verified"] is True
        assert profile["given_name"] == "Ada"
        assert profile["family_name"] == "Lovelace"
        assert profile["attributes"] == {"test_attribute1": "engine"}

        row = client.get(f"{INVITATIONS}/{invitation['id']}", headers=admin.bearer).json()
        assert row["status"] == "accepted"
        assert row["user_sub"] == sub_of(tokens["access_token"]) == profile["sub"]
        assert row["accepted_at"] is not None

        assert sign_in(client, email, CHOSEN_PASSWORD).access_token
        assert_problem(accept(client, token), 400, "invalid_invitation")
        assert_problem(lookup(client, token), 400, "invalid_invitation")
        assert len(users_with_email(cognito, email)) == 1

    def test_family_name_missing_everywhere_is_refused(self, client, admin, outbox, cognito):
        email = new_email("nofamily")
        response = client.post(INVITATIONS, json={"email": email}, headers=admin.bearer)
        assert response.status_code == 201, response.text
        token = wait_link(outbox, email).removeprefix(LINK_PREFIX)
        assert lookup(client, token).json()["family_name"] is None

        # The pool requires family_name; neither the invitation nor the body has one.
        body = assert_problem(accept(client, token), 400, "attribute_required")
        assert body["errors"] == [
            {
                "loc": ["body", "family_name"],
                "msg": "The user pool requires family_name.",
                "type": "attribute_required",
            }
        ]
        assert users_with_email(cognito, email) == []

        accepted = accept(client, token, family_name="Given-In-Accept")
        assert accepted.status_code == 201, accepted.text
        bearer = {"Authorization": f"Bearer {accepted.json()['access_token']}"}
        assert client.get("/v1/me", headers=bearer).json()["family_name"] == "Given-In-Accept"

    def test_accept_body_overrides_the_invitation(self, client, admin, outbox):
        _, token = invite_and_link(
            client, admin, outbox, new_email("override"), given_name="Old", family_name="Old"
        )
        accepted = accept(
            client,
            token,
            given_name="New",
            family_name="Newer",
            attributes={"test_attribute1": "mine"},
        )
        assert accepted.status_code == 201, accepted.text
        bearer = {"Authorization": f"Bearer {accepted.json()['access_token']}"}
        profile = client.get("/v1/me", headers=bearer).json()
        assert (profile["given_name"], profile["family_name"]) == ("New", "Newer")
        assert profile["attributes"] == {"test_attribute1": "mine"}

    @pytest.mark.parametrize(
        ("attributes", "status", "code"),
        [
            ({"no_such_attribute": "x"}, 400, "unknown_attribute"),
            ({"test_attribute1": "x" * 257}, 400, "invalid_attribute_value"),
            ({"email_verified": "x"}, 422, "validation_error"),
            ({"email": "x"}, 422, "validation_error"),
        ],
    )
    def test_refused_attribute_in_accept_creates_nobody(
        self, client, admin, outbox, cognito, attributes, status, code
    ):
        email = new_email("badattr")
        _, token = invite_and_link(client, admin, outbox, email)
        response = accept(client, token, attributes=attributes)
        body = assert_problem(response, status, code)
        (name,) = attributes
        assert [e["loc"][:3] for e in body["errors"]] == [["body", "attributes", name]]
        assert users_with_email(cognito, email) == []
        assert accept(client, token).status_code == 201

    def test_unknown_token_is_invalid(self, client):
        assert_problem(lookup(client, "x" * 43), 400, "invalid_invitation")
        assert_problem(accept(client, "x" * 43), 400, "invalid_invitation")


# ------------------------------------------------------------------ concurrency


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(cognito, database_url) -> Iterator[str]:
    """The real app in a real uvicorn server on a loopback port."""
    app = create_app(make_settings(cognito, database_url))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise AssertionError("uvicorn did not come up")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=15)


class TestConcurrentAccepts:
    def test_twenty_concurrent_accepts_make_one_user(self, client, admin, outbox, cognito, request):
        email = new_email("race")
        # Wait for the link before the second app starts: its worker shares the database.
        invitation, token = invite_and_link(client, admin, outbox, email, groups=["admin"])
        base = request.getfixturevalue("live_server")

        n = 20
        barrier = threading.Barrier(n)
        results: list[tuple[int, dict]] = []
        lock = threading.Lock()

        def attempt() -> None:
            with httpx.Client(base_url=base, timeout=60) as http:
                barrier.wait()
                response = http.post(
                    f"{INVITATIONS}/accept", json={"token": token, "password": CHOSEN_PASSWORD}
                )
            with lock:
                results.append((response.status_code, response.json()))

        threads = [threading.Thread(target=attempt) for _ in range(n)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        assert len(results) == n

        winners = [body for status, body in results if status == 201]
        assert len(winners) == 1, results
        for status, body in results:
            if status != 201:
                assert (status, body["code"]) in {
                    (409, "conflict"),
                    (400, "invalid_invitation"),
                }, body
        users = users_with_email(cognito, email)
        assert len(users) == 1
        row = get_row(client, invitation["id"])
        assert row.status == "accepted"
        assert row.user_sub == sub_of(winners[0]["access_token"])


# ------------------------------------------------------------------ crash injection


class InjectedCrash(RuntimeError):
    pass


@pytest.fixture
def crash_at(client):
    """Make the saga raise at one step; the hook is restored whatever happens."""
    service = state_of(client).invitations
    original = service.fault
    reached: list[str] = []

    def arm(step: str) -> list[str]:
        def fault(current: str) -> None:
            reached.append(current)
            if current == step:
                raise InjectedCrash(f"injected at {step}")

        service.fault = fault
        return reached

    def disarm() -> None:
        service.fault = original

    arm.disarm = disarm  # type: ignore[attr-defined]
    yield arm
    service.fault = original


class TestCrashBetweenSteps:
    @pytest.mark.parametrize("step", SAGA_STEPS)
    def test_retrying_the_token_repairs_the_acceptance(
        self, client, admin, outbox, cognito, crash_at, step
    ):
        email = new_email("crash")
        invitation, token = invite_and_link(
            client, admin, outbox, email, given_name="Crash", groups=["admin"]
        )
        reached = crash_at(step)
        assert_opaque_500(accept(client, token))
        assert reached[-1] == step
        crash_at.disarm()

        # The failure released the lease: nothing is half-owned and the token still works.
        row = get_row(client, invitation["id"])
        assert row.status == PENDING
        assert row.claim_id is None and row.claimed_until is None
        assert len(users_with_email(cognito, email)) <= 1
        assert lookup(client, token).status_code == 200

        retried = accept(client, token)
        assert retried.status_code == 201, retried.text
        users = users_with_email(cognito, email)
        assert len(users) == 1
        sub = sub_of(retried.json()["access_token"])
        user_sub = {a["Name"]: a["Value"] for a in users[0]["Attributes"]}["sub"]
        assert sub == user_sub
        row = get_row(client, invitation["id"])
        assert (row.status, row.user_sub) == ("accepted", sub)
        bearer = {"Authorization": f"Bearer {retried.json()['access_token']}"}
        assert client.get("/v1/auth/session", headers=bearer).json()["groups"] == ["admin"]
        assert sign_in(client, email, CHOSEN_PASSWORD).access_token
        assert_problem(accept(client, token), 400, "invalid_invitation")

    def test_every_step_is_reached_in_order(self, client, admin, outbox, crash_at):
        _, token = invite_and_link(client, admin, outbox, new_email("steps"))
        reached = crash_at("no-such-step")
        assert accept(client, token).status_code == 201
        assert tuple(reached) == SAGA_STEPS


class TestHardCrash:
    """A process died holding the lease: nothing released it. The lease lapses, then a
    retry or the reconciler repairs the row."""

    def stale(self, client, invitation_id, **values) -> uuid.UUID:
        claim_id = uuid.uuid4()
        set_row(
            client,
            invitation_id,
            claim_id=claim_id,
            claimed_until=datetime.now(UTC) - timedelta(seconds=1),
            **values,
        )
        return claim_id

    def create_user(self, cognito, email: str) -> dict:
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
        return {"username": user["Username"], **{a["Name"]: a["Value"] for a in user["Attributes"]}}

    def test_live_lease_blocks_accept_and_reconcile_leaves_it(self, client, admin, outbox):
        invitation, token = invite_and_link(client, admin, outbox, new_email("leased"))
        claim_id = uuid.uuid4()
        set_row(
            client,
            invitation["id"],
            claim_id=claim_id,
            claimed_until=datetime.now(UTC) + timedelta(minutes=5),
        )
        assert_problem(accept(client, token), 409, "conflict")
        assert_problem(
            client.delete(f"{INVITATIONS}/{invitation['id']}", headers=admin.bearer),
            409,
            "conflict",
        )
        state_of(client).invitations.reconcile()
        assert get_row(client, invitation["id"]).claim_id == claim_id
        set_row(client, invitation["id"], claim_id=None, claimed_until=None)

    def test_lapsed_lease_without_user_is_retried_directly(self, client, admin, outbox, cognito):
        email = new_email("lapsed")
        invitation, token = invite_and_link(client, admin, outbox, email)
        self.stale(client, invitation["id"])
        assert accept(client, token).status_code == 201
        assert len(users_with_email(cognito, email)) == 1

    def test_reconcile_releases_lapsed_lease_without_user(self, client, admin, outbox, cognito):
        email = new_email("nouser")
        invitation, token = invite_and_link(client, admin, outbox, email)
        self.stale(client, invitation["id"])
        counts = state_of(client).invitations.reconcile()
        assert counts["released"] >= 1
        row = get_row(client, invitation["id"])
        assert (row.status, row.claim_id, row.user_sub) == (PENDING, None, None)
        assert users_with_email(cognito, email) == []
        assert accept(client, token).status_code == 201

    def test_reconcile_with_half_created_user_then_retry_reuses_it(
        self, client, admin, outbox, cognito
    ):
        email = new_email("halfmade")
        invitation, token = invite_and_link(client, admin, outbox, email, groups=["admin"])
        self.stale(client, invitation["id"])
        user = self.create_user(cognito, email)  # died before recording the user

        counts = state_of(client).invitations.reconcile()
        assert counts["released"] >= 1
        row = get_row(client, invitation["id"])
        assert row.status == PENDING and row.claim_id is None
        assert row.user_sub == user["sub"]

        accepted = accept(client, token)
        assert accepted.status_code == 201, accepted.text
        assert sub_of(accepted.json()["access_token"]) == user["sub"]
        assert [u["Username"] for u in users_with_email(cognito, email)] == [user["username"]]
        assert get_row(client, invitation["id"]).status == "accepted"
        assert sign_in(client, email, CHOSEN_PASSWORD).access_token

    def test_reconcile_accepts_when_the_user_was_finished(self, client, admin, outbox, cognito):
        email = new_email("finished")
        invitation, token = invite_and_link(client, admin, outbox, email, groups=["admin"])
        user = self.create_user(cognito, email)
        # Died after the password was set, before the row was marked accepted.
        cognito.client.admin_set_user_password(
            UserPoolId=cognito.pool.user_pool_id,
            Username=email,
            Password=CHOSEN_PASSWORD,
            Permanent=True,
        )
        self.stale(client, invitation["id"], user_sub=user["sub"])

        counts = state_of(client).invitations.reconcile()
        assert counts["accepted"] >= 1
        row = get_row(client, invitation["id"])
        assert (row.status, row.user_sub, row.claim_id) == ("accepted", user["sub"], None)
        groups = cognito.client.admin_list_groups_for_user(
            UserPoolId=cognito.pool.user_pool_id, Username=email
        )["Groups"]
        assert [g["GroupName"] for g in groups] == ["admin"]
        assert len(users_with_email(cognito, email)) == 1
        assert sign_in(client, email, CHOSEN_PASSWORD).access_token
        assert_problem(accept(client, token), 400, "invalid_invitation")

    def test_someone_elses_account_is_not_taken_over(self, client, admin, outbox, cognito):
        email = new_email("squatter")
        invitation, token = invite_and_link(client, admin, outbox, email)
        user = self.create_user(cognito, email)
        cognito.client.admin_set_user_password(
            UserPoolId=cognito.pool.user_pool_id,
            Username=email,
            Password="Their-Passw0rd!",
            Permanent=True,
        )
        assert_problem(accept(client, token), 409, "conflict")
        self.stale(client, invitation["id"])
        state_of(client).invitations.reconcile()
        row = get_row(client, invitation["id"])
        assert (row.status, row.user_sub) == (PENDING, None)
        assert sign_in(client, email, "Their-Passw0rd!").access_token
        assert [u["Username"] for u in users_with_email(cognito, email)] == [user["username"]]

    def test_reconcile_deletes_the_half_made_user_of_a_revoked_invitation(
        self, client, admin, outbox, cognito
    ):
        email = new_email("orphan")
        invitation, _ = invite_and_link(client, admin, outbox, email)
        user = self.create_user(cognito, email)
        self.stale(client, invitation["id"], user_sub=user["sub"])
        response = client.delete(f"{INVITATIONS}/{invitation['id']}", headers=admin.bearer)
        assert response.status_code == 204

        counts = state_of(client).invitations.reconcile()
        assert counts["users_deleted"] >= 1
        assert users_with_email(cognito, email) == []
        row = get_row(client, invitation["id"])
        assert (row.status, row.user_sub) == (REVOKED, None)


class TestAdminActionRacingAccept:
    """An admin action (revoke, resend) reads the row, then an accept starts before the
    action commits. One of them must lose."""

    def race(self, client, token: str, action) -> dict[str, object]:
        """Run ``action(session)`` in an open transaction, start an accept, commit the
        action once the accept is either past its claim or waiting on a row lock."""
        state = state_of(client)
        service = state.invitations
        reached, go = threading.Event(), threading.Event()
        outcome: dict[str, object] = {}

        def fault(step: str) -> None:
            if step == "user_recorded":
                reached.set()
                go.wait(30)

        def run_accept() -> None:
            try:
                outcome["result"] = service.accept(
                    AcceptRequest(token=token, password=CHOSEN_PASSWORD)
                )
            except AuthSvcError as exc:
                outcome["error"] = exc

        original = service.fault
        service.fault = fault
        try:
            with state.db.sessions() as session:
                session.begin()
                action(session)
                racer = threading.Thread(target=run_accept)
                racer.start()
                # Autocommit: pg_stat_activity is a snapshot per transaction.
                watch = state.db.engine.execution_options(isolation_level="AUTOCOMMIT")
                with watch.connect() as watcher:
                    deadline = time.monotonic() + 30
                    while not reached.is_set() and racer.is_alive():
                        waiting = watcher.execute(
                            text(
                                "SELECT count(*) FROM pg_stat_activity"
                                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
                            )
                        ).scalar_one()
                        if waiting:
                            break
                        assert time.monotonic() < deadline, "the accept neither ran nor waited"
                        time.sleep(0.02)
                session.commit()
            go.set()
            racer.join(timeout=60)
        finally:
            go.set()
            service.fault = original
        assert outcome, "the accept did not finish"
        return outcome

    def test_revoke_then_accept_never_leaves_an_account(self, client, admin, outbox, cognito):
        email = new_email("revoke-race")
        invitation, token = invite_and_link(client, admin, outbox, email)
        service = state_of(client).invitations
        outcome = self.race(
            client, token, lambda session: service.revoke(session, uuid.UUID(invitation["id"]))
        )
        row = get_row(client, invitation["id"])
        assert row.status == REVOKED
        assert "result" not in outcome, "a revoked invitation was accepted"
        assert isinstance(outcome["error"], AuthSvcError)
        assert outcome["error"].code in {"conflict", "invalid_invitation"}
        assert users_with_email(cognito, email) == []

    def test_resend_then_accept_with_the_old_token_fails(self, client, admin, outbox, cognito):
        email = new_email("resend-race")
        invitation, old = invite_and_link(client, admin, outbox, email)
        service = state_of(client).invitations
        outcome = self.race(
            client, old, lambda session: service.resend(session, uuid.UUID(invitation["id"]))
        )
        assert "result" not in outcome, "the token killed by the resend was accepted"
        assert isinstance(outcome["error"], AuthSvcError)
        assert outcome["error"].code in {"conflict", "invalid_invitation"}
        assert users_with_email(cognito, email) == []
        row = get_row(client, invitation["id"])
        assert (row.status, row.claim_id) == (PENDING, None)
        new = next_token(outbox, email, old)
        assert_problem(lookup(client, old), 400, "invalid_invitation")
        assert accept(client, new).status_code == 201


# ------------------------------------------------------------------ `authsvc reconcile`


@pytest.fixture
def cli_database(postgres_server) -> Iterator[str]:
    url = create_database(postgres_server, prefix="authsvc_cli")
    migrate.upgrade(url)
    yield url
    drop_database(postgres_server, url)


@pytest.mark.slow
def test_reconcile_cli_repairs_and_prints_counts(cognito, cli_database):
    now = datetime.now(UTC)
    finished_email, lost_email = new_email("cli-finished"), new_email("cli-lost")
    finished = cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=finished_email,
        TemporaryPassword="Temp-Passw0rd!1",
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": finished_email},
            {"Name": "family_name", "Value": "Cli"},
        ],
    )["User"]
    finished_sub = {a["Name"]: a["Value"] for a in finished["Attributes"]}["sub"]
    cognito.client.admin_set_user_password(
        UserPoolId=cognito.pool.user_pool_id,
        Username=finished_email,
        Password=CHOSEN_PASSWORD,
        Permanent=True,
    )

    def row(email: str, user_sub: str | None) -> Invitation:
        return Invitation(
            id=uuid.uuid4(),
            email=email,
            family_name="Cli",
            attributes={},
            groups=[],
            status=PENDING,
            token_hash=hash_token(uuid.uuid4().hex),
            invited_by="admin",
            created_at=now,
            updated_at=now,
            expires_at=now + timedelta(days=1),
            user_sub=user_sub,
            claim_id=uuid.uuid4(),
            claimed_until=now - timedelta(minutes=1),
        )

    db = Database(cli_database)
    with db.sessions() as session, session.begin():
        session.add_all([row(finished_email, finished_sub), row(lost_email, None)])

    env = {
        **os.environ,
        "AUTHSVC_COGNITO_REGION": cognito.pool.region,
        "AUTHSVC_COGNITO_USER_POOL_ID": cognito.pool.user_pool_id,
        "AUTHSVC_COGNITO_CLIENT_ID": cognito.pool.client_id,
        "AUTHSVC_COGNITO_ENDPOINT_URL": cognito.endpoint_url,
        "AUTHSVC_DATABASE_URL": cli_database,
        "AUTHSVC_SECRET_KEY": SECRET_KEY,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": cognito.pool.region,
    }
    env.pop("AUTHSVC_DEV_MODE", None)
    script = Path(sys.executable).with_name("authsvc")  # the installed console script
    assert script.is_file()
    done = subprocess.run(
        [str(script), "reconcile"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts == {"accepted": 1, "released": 1, "users_deleted": 0}

    with db.sessions() as session:
        rows = {r.email: r for r in session.query(Invitation)}
    db.dispose()
    assert (rows[finished_email].status, rows[finished_email].user_sub) == (
        "accepted",
        finished_sub,
    )
    assert rows[lost_email].status == PENDING
    assert rows[lost_email].claim_id is None and rows[lost_email].claimed_until is None
