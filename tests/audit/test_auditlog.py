"""AuditLog on its own: recording never touches the database, writing survives an outage,
a full buffer drops the oldest entries and counts them, and a disabled log records nothing."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from authsvc import errors
from authsvc.audit.models import AuditEvent
from authsvc.audit.service import FAILURE, SUCCESS, AuditLog, RequestContext
from authsvc.db import Database
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, new_email


def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class CountingDatabase(Database):
    """A Database that counts the sessions opened on it."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.opened = 0
        make = self.sessions

        def sessions(*args: Any, **kwargs: Any) -> Any:
            self.opened += 1
            return make(*args, **kwargs)

        self.sessions = sessions  # type: ignore[assignment]


@pytest.fixture
def dead_db() -> Iterator[CountingDatabase]:
    db = CountingDatabase(f"postgresql+psycopg://postgres@127.0.0.1:{closed_port()}/nowhere")
    yield db
    db.dispose()


@pytest.fixture(scope="module")
def live_db(database_url: str) -> Iterator[Database]:
    db = Database(database_url)
    yield db
    db.dispose()


def tag() -> str:
    return f"unit-{uuid.uuid4().hex[:12]}"


def stored(db: Database, *targets: str) -> list[AuditEvent]:
    with db.sessions() as session:
        query = select(AuditEvent).where(AuditEvent.target.in_(targets))
        return list(session.scalars(query.order_by(AuditEvent.occurred_at, AuditEvent.id)))


# -- recording -----------------------------------------------------------------------------


def test_record_does_no_io(dead_db):
    log = AuditLog(dead_db)
    started = time.perf_counter()
    for i in range(1000):
        log.record("sign_in_failed", outcome=FAILURE, target=f"t{i}", detail={"code": "x"})
    elapsed = time.perf_counter() - started
    assert log.pending() == 1000
    assert dead_db.opened == 0
    assert elapsed < 1.0  # a dict and a deque append each; no connection attempt


def test_track_does_no_io_either(dead_db):
    log = AuditLog(dead_db)
    with log.track("sign_up", RequestContext(ip="203.0.113.7")):
        pass
    with pytest.raises(errors.InvalidCodeError), log.track("sign_up_confirmed", RequestContext()):
        raise errors.InvalidCodeError()
    assert log.pending() == 2
    assert dead_db.opened == 0


def test_flush_on_a_dead_database_keeps_the_rows_for_a_live_one(dead_db, live_db):
    log = AuditLog(dead_db)
    targets = [tag() for _ in range(5)]
    for target in targets:
        log.record("user_disabled", actor="admin-sub", target=target)

    assert log.flush() == 0
    assert log.pending() == 5
    assert log.write_failures == 1
    assert log.flush() == 0  # and again: nothing lost, nothing duplicated
    assert log.pending() == 5
    assert log.dropped == 0

    log.db = live_db  # the database is back
    assert log.flush() == 5
    assert log.pending() == 0
    assert log.written == 5
    rows = stored(live_db, *targets)
    assert [r.target for r in rows] == targets  # in order, once each
    assert {(r.action, r.actor, r.outcome) for r in rows} == {
        ("user_disabled", "admin-sub", SUCCESS)
    }
    assert log.flush() == 0


def test_capacity_overflow_drops_the_oldest(dead_db, live_db):
    log = AuditLog(dead_db, capacity=3)
    targets = [tag() for _ in range(5)]
    for target in targets:
        log.record("sign_up", target=target)
    assert log.pending() == 3
    assert log.dropped == 2

    log.db = live_db
    assert log.flush() == 3
    assert [r.target for r in stored(live_db, *targets)] == targets[2:]


def test_overflow_while_the_database_is_down(dead_db, live_db):
    log = AuditLog(dead_db, capacity=4)
    targets = [tag() for _ in range(6)]
    for target in targets[:4]:
        log.record("sign_up", target=target)
    assert log.flush() == 0  # put back at the front
    for target in targets[4:]:
        log.record("sign_up", target=target)
    assert (log.pending(), log.dropped) == (4, 2)

    log.db = live_db
    assert log.flush() == 4
    assert [r.target for r in stored(live_db, *targets)] == targets[2:]


def test_a_flush_that_fails_halfway_keeps_only_what_was_not_written(database_url, live_db):
    class Flaky(Database):
        """Opens two sessions, then the database goes away."""

        calls = 0

        def __init__(self, url: str) -> None:
            super().__init__(url)
            make = self.sessions

            def sessions(*args: Any, **kwargs: Any) -> Any:
                Flaky.calls += 1
                if Flaky.calls > 2:
                    raise OperationalError("connect", None, ConnectionRefusedError())
                return make(*args, **kwargs)

            self.sessions = sessions  # type: ignore[assignment]

    flaky = Flaky(database_url)
    try:
        log = AuditLog(flaky, batch_size=2)
        targets = [tag() for _ in range(7)]
        for target in targets:
            log.record("sign_up", target=target)
        assert log.flush() == 4  # two batches of two, then the outage
        assert log.pending() == 3
        assert [r.target for r in stored(live_db, *targets)] == targets[:4]
        log.db = live_db
        assert log.flush() == 3
        assert [r.target for r in stored(live_db, *targets)] == targets  # no gap, no repeat
    finally:
        flaky.dispose()


def test_disabled_log_records_nothing(dead_db):
    log = AuditLog(dead_db, enabled=False)
    log.record("sign_in", target="x")
    with log.track("sign_in", RequestContext()):
        pass
    with pytest.raises(errors.InvalidCredentialsError), log.track("sign_in", RequestContext()):
        raise errors.InvalidCredentialsError()
    assert log.pending() == 0
    assert log.flush() == 0
    assert dead_db.opened == 0


def test_disabled_app_writes_no_rows(cognito, database_url):
    app = create_app(make_settings(cognito, database_url, audit_enabled=False))
    email = new_email("quiet")
    with TestClient(app, raise_server_exceptions=False) as client:
        client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert app.state.authsvc.audit.pending() == 0
        app.state.authsvc.audit.flush()
        assert stored(app.state.authsvc.db, email) == []


# -- what a row holds ----------------------------------------------------------------------


def test_track_records_success_failure_and_internal_errors(live_db):
    log = AuditLog(live_db)
    ctx = RequestContext(ip="203.0.113.7", user_agent="ua", request_id="rid")
    ok, bad, boom = tag(), tag(), tag()
    with log.track("user_updated", ctx, actor="admin", target=ok) as ev:
        ev.detail["fields"] = ["given_name"]
    with pytest.raises(errors.NotFoundError), log.track("user_deleted", ctx, target=bad) as ev:
        ev.actor = "learned-late"
        raise errors.NotFoundError()
    with (
        pytest.raises(RuntimeError),
        log.track("sign_in", ctx, target=boom, failure_action="sign_in_failed"),
    ):
        raise RuntimeError("bug")
    assert log.flush() == 3
    rows = {r.target: r for r in stored(live_db, ok, bad, boom)}
    assert (rows[ok].outcome, rows[ok].actor, rows[ok].detail) == (
        SUCCESS,
        "admin",
        {"fields": ["given_name"]},
    )
    assert (rows[ok].ip, rows[ok].user_agent, rows[ok].request_id) == ("203.0.113.7", "ua", "rid")
    assert (rows[bad].outcome, rows[bad].actor, rows[bad].detail) == (
        FAILURE,
        "learned-late",
        {"code": "not_found"},
    )
    assert (rows[boom].action, rows[boom].detail) == ("sign_in_failed", {"code": "internal_error"})


def test_user_agent_is_cut_to_the_column(live_db):
    log = AuditLog(live_db)
    target = tag()
    log.record("sign_in", target=target, context=RequestContext(user_agent="x" * 5000))
    log.record("sign_in", target=target, context=RequestContext(user_agent=""))
    assert log.flush() == 2
    assert sorted((r.user_agent or "") for r in stored(live_db, target)) == ["", "x" * 512]


def test_the_background_writer_and_stop(live_db):
    log = AuditLog(live_db, flush_interval=0.05)
    log.start()
    try:
        first = tag()
        log.record("sign_in", target=first)
        deadline = time.monotonic() + 5
        while not stored(live_db, first):
            assert time.monotonic() < deadline, "the writer never flushed"
            time.sleep(0.02)
    finally:
        last = tag()
        log.record("sign_in", target=last)
        log.stop()  # flushes what is left
    assert stored(live_db, last)
    assert log.pending() == 0


def test_stop_with_a_dead_database_does_not_raise(dead_db):
    log = AuditLog(dead_db, flush_interval=0.05)
    log.start()
    log.record("sign_in", target="x")
    log.stop()
    assert log.pending() == 1
    assert log.write_failures >= 1


def test_rows_the_database_refuses_are_dropped_not_retried_forever(database_url):
    """A batch refused for its content (not an outage) must not block later events."""
    from authsvc.audit.service import AuditLog
    from authsvc.db import Database

    db = Database(database_url)
    try:
        log = AuditLog(db)
        # A value longer than the column allows: Postgres refuses it (DataError);
        # SQLite accepts it, so there the batch is simply written.
        log.record("x" * 500, target="refused")
        first = log.flush()
        log.record("sign_in", target="after-the-refused-one")
        second = log.flush()
        assert second == 1, "a later event was blocked behind the refused batch"
        assert log.pending() == 0
        if first == 0:
            assert log.dropped == 1 and log.write_failures == 1
    finally:
        db.dispose()
