"""Issue 16 item 1: /readyz is 503 naming `migrations behind` until the schema is at head,
and serve's background workers wait for it instead of failing every pass."""

from __future__ import annotations

import logging
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient

from authsvc import migrate
from authsvc.main import create_app
from tests.conftest import Emulator, make_settings
from tests.operations.support import AUTHSVC, env_for, free_port

pytestmark = pytest.mark.slow


def _revisions() -> tuple[str, str]:
    script = ScriptDirectory(str(migrate.migrations_dir()))
    head = script.get_current_head()
    assert head is not None
    previous = script.get_revision(head).down_revision
    assert isinstance(previous, str), "needs two migrations in a line"
    return head, previous


def _database_check(client: TestClient) -> tuple[int, dict[str, object]]:
    response = client.get("/readyz")
    body = response.json()
    [check] = [c for c in body["checks"] if c["name"] == "database"]
    return response.status_code, check


class TestReadyz:
    def test_never_migrated_is_not_ready(self, cognito: Emulator, empty_database: str) -> None:
        head, _ = _revisions()
        app = create_app(make_settings(cognito, empty_database))
        with TestClient(app, raise_server_exceptions=False) as client:
            status, check = _database_check(client)
        assert status == 503
        assert check["status"] == "fail"
        detail = str(check["detail"])
        assert detail.startswith("migrations behind (current none, head "), detail
        assert head in detail
        assert "authsvc migrate" in detail

    def test_one_revision_behind_names_both(self, cognito: Emulator, empty_database: str) -> None:
        head, previous = _revisions()
        migrate.upgrade(empty_database, previous)
        app = create_app(make_settings(cognito, empty_database))
        with TestClient(app, raise_server_exceptions=False) as client:
            status, check = _database_check(client)
        assert status == 503
        assert f"current {previous}, head {head}" in str(check["detail"])

    def test_at_head_is_ready(self, cognito: Emulator, empty_database: str) -> None:
        migrate.upgrade(empty_database)
        app = create_app(make_settings(cognito, empty_database))
        with TestClient(app, raise_server_exceptions=False) as client:
            status, check = _database_check(client)
        assert check["status"] == "ok", check
        assert status == 200

    def test_a_newer_schema_is_not_behind(self, cognito: Emulator, empty_database: str) -> None:
        # A rolling deploy: the next release migrated first; this one keeps serving.
        migrate.upgrade(empty_database)
        from sqlalchemy import create_engine, text

        engine = create_engine(empty_database)
        with engine.begin() as conn:
            conn.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
        engine.dispose()
        app = create_app(make_settings(cognito, empty_database))
        with TestClient(app, raise_server_exceptions=False) as client:
            _, check = _database_check(client)
        assert check["status"] == "ok", check


class TestBackgroundWorkersWait:
    def test_workers_wait_quietly_then_start_once_migrated(
        self, cognito: Emulator, empty_database: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.INFO)
        settings = make_settings(cognito, empty_database, outbox_poll_seconds=0.1)
        app = create_app(settings)
        with TestClient(app, raise_server_exceptions=False) as client:
            state = app.state.authsvc
            # Several outbox poll intervals pass: nothing runs, so nothing fails.
            for _ in range(5):
                assert client.get("/readyz").status_code == 503
                time.sleep(0.1)
            assert state.outbox_worker._thread is None
            waiting = [r for r in caplog.records if "wait for the database" in r.getMessage()]
            assert len(waiting) == 1
            assert "migrations behind" in waiting[0].getMessage()
            # The revocation poller runs regardless and says once that it cannot read the
            # ledger; nothing repeats, and the waiting workers say nothing at all.
            failures = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
            assert all(count == 1 for count in Counter(failures).values()), failures
            quiet = {"authsvc.email", "authsvc.audit", "authsvc.email.outbox"}
            assert not [
                r for r in caplog.records if r.levelno >= logging.WARNING and r.name in quiet
            ]

            migrate.upgrade(empty_database)
            deadline = time.monotonic() + 30
            while state.outbox_worker._thread is None and time.monotonic() < deadline:
                time.sleep(0.1)
            assert state.outbox_worker._thread is not None, "workers never started"
            assert any("background workers started" in r.getMessage() for r in caplog.records)


class TestServeOnAnUnmigratedDatabase:
    def test_one_line_says_to_migrate_and_readyz_names_it(
        self, cognito: Emulator, empty_database: str, tmp_path: Path
    ) -> None:
        port = free_port()
        env = env_for(cognito, database_url=empty_database, outbox_poll_seconds="0.2")
        out, err = tmp_path / "out.log", tmp_path / "err.log"
        with out.open("w") as stdout, err.open("w") as stderr:
            process = subprocess.Popen(
                [str(AUTHSVC), "serve", "--port", str(port)],
                env=env,
                cwd=tmp_path,
                stdout=stdout,
                stderr=stderr,
            )
        try:
            body = None
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and process.poll() is None:
                try:
                    response = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
                except httpx.TransportError:
                    time.sleep(0.2)
                    continue
                assert response.status_code == 503
                body = response.json()
                break
            assert body is not None, err.read_text()
            [check] = [c for c in body["checks"] if c["name"] == "database"]
            assert "migrations behind" in check["detail"]
            time.sleep(1.5)  # several outbox poll intervals: no pass may fail and log
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        logs = out.read_text() + err.read_text()
        told = [line for line in logs.splitlines() if "authsvc migrate" in line]
        assert len(told) == 1, logs
        assert "migrations behind" in told[0]
        # serve's start-up checks: one line each, a failure logged without stopping it.
        for check in ("configuration", "database", "cognito pool", "cognito client", "email"):
            assert f"check ok   {check}" in logs, (check, logs)
        assert "check FAIL migrations" in logs
        # At most the revocation poller's one-time "sync failed" line: nothing repeats.
        for noise in ("OperationalError", "ProgrammingError", "UndefinedTable"):
            assert logs.count(noise) <= 1, logs
        assert "outbox pass failed" not in logs
        assert "Traceback" not in logs
