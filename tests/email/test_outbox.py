"""The transactional outbox and its worker on real Postgres (DESIGN §4): retries with
backoff, giving up, rollback sends nothing, at-least-once after a worker dies."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from authsvc.db import Database
from authsvc.email.backends import DeliveryError, Message
from authsvc.email.crypto import PayloadCipher
from authsvc.email.models import FAILED, QUEUED, SENDING, SENT, EmailOutbox
from authsvc.email.outbox import Outbox, OutboxWorker, Periodic

KEY = "outbox-test-secret-key"
LINK = "http://app.example.test/accept-invitation#token=secret-token-value"


class RecordingBackend:
    """Fails the first ``failures`` sends, then records every message it is given."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.calls = 0
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise DeliveryError("smtp: SMTPServerDisconnected")
        self.sent.append(message)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC) + timedelta(seconds=1)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def enqueue(db: Database, outbox: Outbox, to: str = "someone@example.com") -> uuid.UUID:
    with db.sessions() as session, session.begin():
        return outbox.enqueue(
            session, kind="invitation", to=to, subject="You're invited", text=LINK, link=LINK
        )


def row(db: Database, id: uuid.UUID) -> EmailOutbox:
    with db.sessions() as session:
        found = session.get(EmailOutbox, id)
        assert found is not None
        return found


@pytest.fixture
def outbox() -> Outbox:
    return Outbox(PayloadCipher(KEY))


def worker(db: Database, backend, clock: Clock, **kwargs) -> OutboxWorker:
    return OutboxWorker(db, PayloadCipher(KEY), backend, clock=clock, **kwargs)


class TestEnqueue:
    def test_row_is_queued_with_a_sealed_payload(self, email_db, outbox):
        id = enqueue(email_db, outbox)
        stored = row(email_db, id)
        assert (stored.status, stored.attempts, stored.kind) == (QUEUED, 0, "invitation")
        assert stored.payload is not None and "secret-token-value" not in stored.payload
        assert PayloadCipher(KEY).open(stored.payload)["link"] == LINK

    def test_rolled_back_transaction_sends_nothing(self, email_db, outbox):
        rung = []
        outbox.on_commit = lambda: rung.append(True)
        with email_db.sessions() as session:
            session.begin()
            id = outbox.enqueue(
                session, kind="invitation", to="x@example.com", subject="s", text="t"
            )
            session.rollback()
        assert rung == []
        with email_db.sessions() as session:
            assert session.get(EmailOutbox, id) is None
        backend = RecordingBackend()
        assert worker(email_db, backend, Clock()).run_once() == 0
        assert backend.calls == 0

    def test_commit_rings_the_doorbell(self, email_db, outbox):
        rung = []
        outbox.on_commit = lambda: rung.append(True)
        enqueue(email_db, outbox)
        assert rung == [True]


class TestDelivery:
    def test_delivers_once_and_erases_the_payload(self, email_db, outbox):
        id = enqueue(email_db, outbox, to="to@example.com")
        backend, clock = RecordingBackend(), Clock()
        assert worker(email_db, backend, clock).run_once() == 1
        [message] = backend.sent
        assert (message.id, message.to, message.link) == (str(id), "to@example.com", LINK)
        assert message.subject == "You're invited"
        stored = row(email_db, id)
        assert (stored.status, stored.payload, stored.attempts) == (SENT, None, 1)
        clock.advance(hours=10)
        assert worker(email_db, backend, clock).run_once() == 0
        assert len(backend.sent) == 1

    def test_failures_are_retried_with_backoff_then_delivered_exactly_once(self, email_db, outbox):
        id = enqueue(email_db, outbox)
        backend, clock = RecordingBackend(failures=3), Clock()
        w = worker(email_db, backend, clock, max_attempts=8)
        for attempt in range(1, 4):
            assert w.run_once() == 0
            stored = row(email_db, id)
            assert (stored.status, stored.attempts) == (QUEUED, attempt)
            assert stored.last_error == "smtp: SMTPServerDisconnected"
            assert stored.payload is not None
            # Backed off: not due again straight away.
            assert stored.next_attempt_at > clock.now
            calls = backend.calls
            assert w.run_once() == 0 and backend.calls == calls
            clock.advance(hours=2)
        assert w.run_once() == 1
        assert [m.id for m in backend.sent] == [str(id)]
        stored = row(email_db, id)
        assert (stored.status, stored.attempts, stored.payload) == (SENT, 4, None)
        assert stored.last_error is None
        clock.advance(hours=2)
        assert w.run_once() == 0
        assert len(backend.sent) == 1

    def test_gives_up_after_max_attempts(self, email_db, outbox):
        id = enqueue(email_db, outbox)
        backend, clock = RecordingBackend(failures=100), Clock()
        w = worker(email_db, backend, clock, max_attempts=3)
        for _ in range(3):
            w.run_once()
            clock.advance(hours=2)
        stored = row(email_db, id)
        assert (stored.status, stored.attempts, stored.payload) == (FAILED, 3, None)
        assert backend.calls == 3
        clock.advance(days=2)
        assert w.run_once() == 0
        assert backend.calls == 3

    def test_undecryptable_payload_is_retried_then_given_up(self, email_db):
        id = enqueue(email_db, Outbox(PayloadCipher("a-different-secret-key")))
        backend, clock = RecordingBackend(), Clock()
        reader = worker(email_db, backend, clock, max_attempts=2)
        assert reader.run_once() == 0
        assert (row(email_db, id).status, row(email_db, id).attempts) == (QUEUED, 1)
        clock.advance(hours=2)
        assert reader.run_once() == 0
        stored = row(email_db, id)
        assert (stored.status, stored.payload) == (FAILED, None)
        assert backend.calls == 0

    def test_message_of_a_dead_worker_is_delivered_by_the_next_pass(self, email_db, outbox):
        id = enqueue(email_db, outbox)
        # A worker claimed it and died: status sending, its lease now in the past.
        with email_db.sessions() as session, session.begin():
            session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.id == id)
                .values(status=SENDING, lease_until=datetime.now(UTC) - timedelta(seconds=1))
            )
        backend = RecordingBackend()
        assert worker(email_db, backend, Clock()).run_once() == 1
        assert [m.id for m in backend.sent] == [str(id)]
        assert row(email_db, id).status == SENT

    def test_a_live_lease_is_left_alone(self, email_db, outbox):
        id = enqueue(email_db, outbox)
        clock = Clock()
        with email_db.sessions() as session, session.begin():
            session.execute(
                update(EmailOutbox)
                .where(EmailOutbox.id == id)
                .values(status=SENDING, lease_until=clock.now + timedelta(minutes=2))
            )
        backend = RecordingBackend()
        assert worker(email_db, backend, clock).run_once() == 0
        assert backend.calls == 0

    def test_death_after_sending_resends_with_the_same_message_id(self, email_db, outbox):
        id = enqueue(email_db, outbox)

        class DiesAfterSending(RecordingBackend):
            def send(self, message: Message) -> None:
                super().send(message)
                raise SystemExit("killed between sending and recording")

        dying, clock = DiesAfterSending(), Clock()
        with pytest.raises(SystemExit):
            worker(email_db, dying, clock, lease_seconds=60).run_once()
        assert row(email_db, id).status == SENDING

        backend = RecordingBackend()
        assert worker(email_db, backend, clock).run_once() == 0  # lease not lapsed yet
        clock.advance(seconds=61)
        assert worker(email_db, backend, clock).run_once() == 1
        # At least once: sent twice, under one Message-ID so receivers drop the duplicate.
        assert [m.id for m in dying.sent + backend.sent] == [str(id), str(id)]
        assert row(email_db, id).status == SENT


class TestWorkerThread:
    def test_commit_wakes_the_worker_long_before_its_poll(self, email_db, outbox):
        backend = RecordingBackend()
        w = OutboxWorker(email_db, PayloadCipher(KEY), backend, poll_seconds=60)
        w.start()
        try:
            time.sleep(0.2)  # let its first (empty) pass finish: it now sleeps for 60 s
            outbox.on_commit = w.wake
            id = enqueue(email_db, outbox)
            deadline = time.monotonic() + 15
            while not backend.sent and time.monotonic() < deadline:
                time.sleep(0.02)
            assert [m.id for m in backend.sent] == [str(id)]
        finally:
            w.stop()
        assert row(email_db, id).status == SENT

    def test_stop_ends_the_thread(self, email_db):
        w = OutboxWorker(email_db, PayloadCipher(KEY), RecordingBackend(), poll_seconds=60)
        w.start()
        w.stop(timeout=5)
        assert w._thread is not None and not w._thread.is_alive()


class TestPeriodic:
    def test_runs_repeatedly_and_survives_failures(self):
        calls: list[int] = []
        enough = threading.Event()

        def fn() -> None:
            calls.append(1)
            if len(calls) >= 3:
                enough.set()
            if len(calls) == 1:
                raise RuntimeError("first pass fails")

        periodic = Periodic("test-periodic", fn, interval=0.01)
        periodic.start()
        try:
            assert enough.wait(5)
        finally:
            periodic.stop(timeout=5)
        assert periodic._thread is not None and not periodic._thread.is_alive()
        count = len(calls)
        time.sleep(0.05)
        assert len(calls) == count  # stopped means stopped


class TestWrongKey:
    def test_an_instance_with_another_key_does_not_destroy_the_message(self, email_db, outbox):
        """Mid key rotation (or one misconfigured instance), a worker that cannot read a
        message retries it later instead of failing it: a worker with the key delivers."""
        id = enqueue(email_db, outbox, to="rotation@example.com")
        clock = Clock()
        wrong = OutboxWorker(
            email_db, PayloadCipher("another-secret-key-xyz"), RecordingBackend(), clock=clock
        )
        assert wrong.run_once() == 0
        stored = row(email_db, id)
        assert (stored.status, stored.attempts) == (QUEUED, 1)
        assert stored.payload is not None  # still deliverable
        clock.advance(hours=2)  # past the backoff
        backend = RecordingBackend()
        assert worker(email_db, backend, clock).run_once() == 1
        assert [m.to for m in backend.sent] == ["rotation@example.com"]
        assert row(email_db, id).status == SENT


def test_apps_on_one_database_share_their_dev_outbox(email_db_url: str, cognito) -> None:  # type: ignore[no-untyped-def]
    """Any app's worker on a database may deliver what another app queued there: in dev mode
    the message must still show in the outbox of the app that queued it."""
    from authsvc.main import build_state
    from tests.conftest import make_settings

    queuing = build_state(make_settings(cognito, email_db_url))
    delivering = build_state(make_settings(cognito, email_db_url))
    assert queuing.outbox is delivering.outbox
    to = f"shared-{uuid.uuid4().hex[:8]}@example.com"
    with queuing.db.sessions() as session, session.begin():
        queuing.invitations.outbox.enqueue(
            session, kind="invitation", to=to, subject="Join", text="hello"
        )
    assert delivering.outbox_worker.run_once() >= 1  # the other app's worker claims it
    assert queuing.outbox is not None
    assert [m.subject for m in queuing.outbox.list(to=to)] == ["Join"]
    queuing.db.dispose()
    delivering.db.dispose()
