"""Revocation of locally verified tokens (DESIGN §5), on a real Postgres database.

Unit tests drive ``RevocationRegistry`` with a controlled clock and hand-built claims;
the end-to-end tests go through the app.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator

import jwt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from authsvc.cognito.tokens import AccessClaims
from authsvc.db import Database
from authsvc.main import create_app
from authsvc.revocation.models import TokenAllowance, TokenRevocation
from authsvc.revocation.service import RevocationRegistry
from tests.helpers import sign_in, signed_in_user

SECOND = 1_000_000  # µs
# A revocation at T.4 s, an hour ago: the "revocation second" is T. (In the past, so that
# these rows, shared with the real-time tests below, are older than anything revoked now.)
T = int(time.time()) - 3600
REVOKED_AT = T * SECOND + 400_000


class Clock:
    """A settable µs clock."""

    def __init__(self, now_us: int) -> None:
        self.now_us = now_us

    def __call__(self) -> int:
        return self.now_us


def claims_for(sub: str, iat: int, jti: str | None = None) -> AccessClaims:
    return AccessClaims(
        sub=sub,
        username=sub,
        groups=(),
        scopes=("aws.cognito.signin.user.admin",),
        client_id="client",
        issued_at=iat,
        expires_at=iat + 3600,
        jti=jti or str(uuid.uuid4()),
        token="unused",
    )


def access_token(claims: AccessClaims) -> str:
    # issued() reads the token without checking its signature (authsvc just got it from
    # Cognito); any key will do here.
    return jwt.encode(
        {"sub": claims.sub, "iat": claims.issued_at, "exp": claims.expires_at, "jti": claims.jti},
        "k" * 32,
        algorithm="HS256",
    )


@pytest.fixture(autouse=True)
def _requires_postgres(postgres_server: str) -> None:
    """Every test here needs Postgres (fails under CI when it is down, skips elsewhere)."""


@pytest.fixture(scope="module")
def db(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    yield database
    database.dispose()


@pytest.fixture
def clock() -> Clock:
    return Clock(REVOKED_AT - 2 * SECOND)


@pytest.fixture
def registry(db: Database, clock: Clock) -> RevocationRegistry:
    return RevocationRegistry(db, clock_us=clock)


@pytest.fixture
def sub() -> str:
    return f"sub-{uuid.uuid4()}"


def revoke_at(registry: RevocationRegistry, clock: Clock, sub: str, at_us: int) -> None:
    clock.now_us = at_us
    assert registry.revoke(sub) == at_us


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- semantics


def test_nothing_revoked(registry, sub) -> None:
    assert registry.is_revoked(claims_for(sub, T)) is False


def test_issued_before_the_revocation_second_is_revoked(registry, clock, sub) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    assert registry.is_revoked(claims_for(sub, T - 1)) is True
    assert registry.is_revoked(claims_for(sub, T - 3600)) is True


def test_issued_after_the_revocation_second_is_valid(registry, clock, sub) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    assert registry.is_revoked(claims_for(sub, T + 1)) is False


def test_same_second_without_a_record_is_revoked(registry, clock, sub) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    assert registry.is_revoked(claims_for(sub, T)) is True


def test_other_users_are_untouched(registry, clock, sub) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    assert registry.is_revoked(claims_for(f"other-{uuid.uuid4()}", T - 5)) is False


def test_same_second_issued_after_the_revocation_is_valid(registry, clock, sub, db) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    clock.now_us = REVOKED_AT + 100_000
    started = registry.started()  # the Cognito call began after the revocation
    token = claims_for(sub, T)
    registry.issued(access_token(token), started)
    assert registry.is_revoked(token) is False
    with db.sessions() as session:
        row = session.get(TokenAllowance, token.jti)
    assert row is not None and row.sub == sub and row.issued_after_us == started
    # The allowance is for that token only: another token of the same second stays dead.
    assert registry.is_revoked(claims_for(sub, T)) is True


def test_same_second_started_before_the_revocation_is_revoked(registry, clock, sub) -> None:
    # The Cognito call began before the revocation was recorded: the token may predate
    # it, so it cannot be proven newer and is refused.
    clock.now_us = REVOKED_AT - 100_000
    started = registry.started()
    revoke_at(registry, clock, sub, REVOKED_AT)
    token = claims_for(sub, T)
    registry.issued(access_token(token), started)
    assert registry.is_revoked(token) is True


def test_started_at_the_revocation_instant_is_revoked(registry, clock, sub) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    token = claims_for(sub, T)
    registry.issued(access_token(token), REVOKED_AT)
    assert registry.is_revoked(token) is True


def test_second_revocation_in_the_same_second_kills_the_allowance(registry, clock, sub) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    clock.now_us = REVOKED_AT + 100_000
    token = claims_for(sub, T)
    registry.issued(access_token(token), registry.started())
    assert registry.is_revoked(token) is False
    revoke_at(registry, clock, sub, REVOKED_AT + 300_000)  # e.g. sign-out again
    assert registry.is_revoked(token) is True
    # A token handed out after the second revocation is alive again.
    clock.now_us = REVOKED_AT + 400_000
    newer = claims_for(sub, T)
    registry.issued(access_token(newer), registry.started())
    assert registry.is_revoked(newer) is False
    assert registry.is_revoked(token) is True


def test_issued_without_a_revocation_records_nothing(registry, clock, sub, db) -> None:
    token = claims_for(sub, T)
    registry.issued(access_token(token), registry.started())
    with db.sessions() as session:
        count = session.scalar(select(func.count()).where(TokenAllowance.sub == sub))
    assert count == 0


def test_issued_after_the_revocation_second_records_nothing(registry, clock, sub, db) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    clock.now_us = (T + 1) * SECOND + 10
    token = claims_for(sub, T + 1)
    registry.issued(access_token(token), registry.started())
    with db.sessions() as session:
        assert session.get(TokenAllowance, token.jti) is None
    assert registry.is_revoked(token) is False


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c"])
def test_issued_ignores_unreadable_tokens(registry, token) -> None:
    registry.issued(token, registry.started())  # must not raise


def test_revocation_only_moves_forward(registry, clock, sub, db) -> None:
    revoke_at(registry, clock, sub, REVOKED_AT)
    # A late writer with an older clock must not resurrect tokens.
    other = RevocationRegistry(db, clock_us=Clock(REVOKED_AT - 5 * SECOND))
    other.revoke(sub)
    with db.sessions() as session:
        assert session.get(TokenRevocation, sub).revoked_at_us == REVOKED_AT
    other.sync()
    assert other.is_revoked(claims_for(sub, T - 1)) is True


# --------------------------------------------------------------------------- two instances


def test_allowance_recorded_by_one_instance_is_honoured_by_another(db, clock, sub) -> None:
    a = RevocationRegistry(db, clock_us=clock)
    b = RevocationRegistry(db, clock_us=clock)
    revoke_at(a, clock, sub, REVOKED_AT)
    clock.now_us = REVOKED_AT + 50_000
    token = claims_for(sub, T)
    a.issued(access_token(token), a.started())
    b.sync()
    assert b.is_revoked(claims_for(sub, T - 1)) is True
    assert b.is_revoked(claims_for(sub, T)) is True
    assert b.is_revoked(token) is False  # read from the database, not from A's memory


def test_token_issued_by_an_instance_that_had_not_yet_seen_the_revocation(db, clock, sub):
    # A revokes; B hands out a token in the same second before its poller has seen the
    # revocation. Once B learns of it, the token (provably newer) must stay valid, on B and
    # on A alike.
    a = RevocationRegistry(db, clock_us=clock)
    b = RevocationRegistry(db, clock_us=clock)
    revoke_at(a, clock, sub, REVOKED_AT)
    clock.now_us = REVOKED_AT + 200_000
    token = claims_for(sub, T)
    b.issued(access_token(token), b.started())
    b.sync()
    assert b.is_revoked(token) is False
    assert a.is_revoked(token) is False
    assert a.is_revoked(claims_for(sub, T)) is True


def test_revocation_on_one_instance_reaches_another_within_a_second(db, sub) -> None:
    a = RevocationRegistry(db)
    b = RevocationRegistry(db)
    b.start()
    try:
        token = claims_for(sub, int(time.time()) - 1)
        assert b.is_revoked(token) is False
        started = time.monotonic()
        a.revoke(sub)
        while not b.is_revoked(token):
            assert time.monotonic() - started < 2.0, "instance B never saw the revocation"
            time.sleep(0.005)
        elapsed = time.monotonic() - started
    finally:
        b.stop()
    assert elapsed < 1.0, f"instance B refused the token only after {elapsed:.3f}s"
    # A token issued after the revocation second is still good on B.
    assert b.is_revoked(claims_for(sub, int(time.time()) + 1)) is False


def test_several_revocations_all_reach_the_other_instance(db) -> None:
    a = RevocationRegistry(db)
    b = RevocationRegistry(db)
    b.start()
    subs = [f"sub-{uuid.uuid4()}" for _ in range(20)]
    try:
        iat = int(time.time()) - 1
        started = time.monotonic()
        for s in subs:
            a.revoke(s)
        while not all(b.is_revoked(claims_for(s, iat)) for s in subs):
            assert time.monotonic() - started < 2.0
            time.sleep(0.005)
        assert time.monotonic() - started < 1.0
    finally:
        b.stop()


def test_a_clock_running_ahead_does_not_blind_the_other_instances(db) -> None:
    # One instance with its clock an hour ahead revokes a user; revocations made afterwards
    # by instances with correct clocks must still reach everyone.
    ahead = RevocationRegistry(db, clock_us=lambda: (int(time.time()) + 3600) * SECOND)
    a = RevocationRegistry(db)
    b = RevocationRegistry(db)
    b.start()
    try:
        ahead.revoke(f"sub-{uuid.uuid4()}")
        time.sleep(3 * b.poll_interval)  # B has seen the future-stamped row
        sub = f"sub-{uuid.uuid4()}"
        token = claims_for(sub, int(time.time()) - 1)
        started = time.monotonic()
        a.revoke(sub)
        while not b.is_revoked(token):
            assert time.monotonic() - started < 2.0, "B stopped seeing revocations"
            time.sleep(0.005)
        assert time.monotonic() - started < 1.0
    finally:
        b.stop()


# --------------------------------------------------------------------------- database down


def test_unreachable_database_never_raises(sub) -> None:
    dead = Database(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test")
    registry = RevocationRegistry(dead, poll_interval=0.05)
    try:
        registry.sync()
        assert registry.healthy is False
        started = int(time.time())
        registry.start()  # the poller keeps failing quietly
        time.sleep(0.2)
        # Never read since start-up (issue 11, item 7): tokens up to the start-up second are
        # refused, later ones judged as usual.
        assert registry.is_revoked(claims_for(sub, started - 1)) is True
        assert registry.is_revoked(claims_for(sub, started + 2)) is False
        registry.issued(access_token(claims_for(sub, int(time.time()))), registry.started())
    finally:
        registry.stop()
        dead.dispose()


def test_known_revocations_survive_the_database_going_away(db, clock, sub) -> None:
    registry = RevocationRegistry(db, clock_us=clock)
    revoke_at(registry, clock, sub, REVOKED_AT)
    dead = Database(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test")
    registry.db = dead
    try:
        registry.sync()
        assert registry.healthy is False
        assert registry.is_revoked(claims_for(sub, T - 1)) is True
        assert registry.is_revoked(claims_for(sub, T + 1)) is False
        # Same second: the allowance lookup needs the database; it fails closed, quietly.
        assert registry.is_revoked(claims_for(sub, T)) is True
    finally:
        dead.dispose()
    registry.db = db
    registry.sync()
    assert registry.healthy is True


# --------------------------------------------------------------------------- through the app


def _session(client: TestClient, token: str):
    return client.get("/v1/auth/session", headers={"Authorization": f"Bearer {token}"})


def _iat(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["iat"])


def test_sign_out_then_sign_in_again_in_the_same_second(client, outbox) -> None:
    email, _ = signed_in_user(client, outbox)
    same_second_seen = False
    for _attempt in range(5):
        old = sign_in(client, email)
        assert _session(client, old.access_token).status_code == 200  # now in the cache
        response = client.post("/v1/auth/sign-out", headers=old.bearer)
        assert response.status_code == 204, response.text
        new = sign_in(client, email)

        refused = _session(client, old.access_token)
        assert refused.status_code == 401, refused.text
        assert refused.json()["code"] == "invalid_token"
        accepted = _session(client, new.access_token)
        assert accepted.status_code == 200, accepted.text

        if _iat(old.access_token) == _iat(new.access_token):
            same_second_seen = True
            break
    # The case that whole-second iat alone cannot decide must have been exercised.
    assert same_second_seen


def test_sign_out_reaches_another_instance_within_a_second(client, outbox, settings) -> None:
    email, tokens = signed_in_user(client, outbox)
    with TestClient(create_app(settings), raise_server_exceptions=False) as other:
        assert _session(other, tokens.access_token).status_code == 200
        started = time.monotonic()
        assert client.post("/v1/auth/sign-out", headers=tokens.bearer).status_code == 204
        while _session(other, tokens.access_token).status_code == 200:
            assert time.monotonic() - started < 2.0, "the other instance kept the token"
            time.sleep(0.01)
        elapsed = time.monotonic() - started
        assert _session(other, tokens.access_token).json()["code"] == "invalid_token"
        # A fresh sign-in on the first instance is accepted by the second.
        fresh = sign_in(client, email)
        assert _session(other, fresh.access_token).status_code == 200
    assert elapsed < 1.0, f"revocation took {elapsed:.3f}s to reach the other instance"


def test_a_revocation_written_late_after_an_outage_reaches_the_others(db) -> None:
    """A revokes X while its database is unreachable (kept in memory); meanwhile B has seen
    a later revocation, so B's high-water mark is past X's revocation time. When A writes X
    after the outage, B must still learn it: instances poll on when a row was *written*."""
    now = int(time.time()) * SECOND
    a = RevocationRegistry(db)
    b = RevocationRegistry(db)
    x, y = f"sub-{uuid.uuid4()}", f"sub-{uuid.uuid4()}"
    x_token = claims_for(x, now // SECOND - 100)

    real_db = a.db
    a.db = Database(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/test")
    a._clock_us = lambda: now - 60 * SECOND  # X was revoked a minute ago, during the outage
    a.revoke(x)
    assert a.unsaved_count() == 1 and a.is_revoked(x_token)
    a.db.dispose()

    RevocationRegistry(db).revoke(y)  # a later revocation elsewhere…
    b.sync()  # …moves B's high-water mark past X's revocation time
    assert not b.is_revoked(x_token)

    a.db = real_db  # the database is back: A writes X, with its original revocation time
    a._clock_us = lambda: time.time_ns() // 1000
    a._flush_unsaved()
    assert a.unsaved_count() == 0
    b.sync()
    assert b.is_revoked(x_token), "a revocation written after an outage never reached B"
