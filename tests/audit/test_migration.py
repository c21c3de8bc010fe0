"""The audit-subject migration (issue 16): on a real Postgres (and on SQLite, the embedded
mode) rows that named their subject by email move it to ``target_email``; ``target`` becomes
the username where the log itself tells it, else NULL; the downgrade restores the old form."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import JSON, Column, DateTime, MetaData, String, Table, Uuid, inspect, select
from sqlalchemy.engine import Engine

from authsvc import migrate
from authsvc.db import make_engine
from tests.conftest import create_database, drop_database

BEFORE = "c4a1e2d9b7f3"  # the revision before the audit subjects
AFTER = "5e7b2c9a1d40"

# The table as the previous revision left it (no target_email), to write old rows with.
_old = Table(
    "audit_event",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("occurred_at", DateTime(timezone=True)),
    Column("actor", String(254)),
    Column("action", String(64)),
    Column("target", String(254)),
    Column("outcome", String(16)),
    Column("ip", String(64)),
    Column("user_agent", String(512)),
    Column("request_id", String(64)),
    Column("detail", JSON),
)


@pytest.fixture
def fresh_postgres(postgres_server: str) -> Iterator[str]:
    url = create_database(postgres_server, prefix="authsvc_auditmig")
    yield url
    drop_database(postgres_server, url)


@pytest.fixture(params=["postgres", "sqlite"])
def fresh_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return str(request.getfixturevalue("fresh_postgres"))


class History:
    """Rows in the old form: two people by email, one admin action by username, a failed
    sign-in for an address that never had an account, and an address whose account was
    deleted and signed up again (two usernames: which one a row meant is unknown)."""

    def __init__(self) -> None:
        self.start = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
        self.rows: list[dict[str, Any]] = []
        self.ada, self.ada_sub = "ada@example.com", str(uuid.uuid4())
        self.bob, self.bob_sub = "bob@example.com", str(uuid.uuid4())
        self.nobody = "nobody@example.com"
        self.twice = "twice@example.com"
        self.twice_subs = (str(uuid.uuid4()), str(uuid.uuid4()))
        self.admin = str(uuid.uuid4())
        self.add("sign_up", self.ada)
        self.add("sign_up_confirmed", self.ada)
        self.add("sign_in", self.ada, actor=self.ada_sub)
        self.add("sign_in_failed", self.ada, outcome="failure")
        self.add("profile_updated", self.ada_sub, actor=self.ada_sub)
        self.add("user_disabled", self.ada_sub, actor=self.admin)
        self.add("invitation_created", self.bob, actor=self.admin)
        self.add("invitation_accepted", self.bob_sub, actor=self.bob_sub)
        self.add("sign_in", self.bob, actor=self.bob_sub)
        self.add("sign_in_failed", self.nobody, outcome="failure")
        self.add("sign_in", self.twice, actor=self.twice_subs[0])
        self.add("sign_in", self.twice, actor=self.twice_subs[1])
        self.add("password_reset_requested", self.twice)
        self.add("token_refreshed", None, actor=self.ada_sub)
        self.add("password_reset_requested", "Ada@Example.COM")  # as typed: one person

    def add(
        self, action: str, target: str | None, *, actor: str | None = None, outcome: str = "success"
    ) -> None:
        self.rows.append(
            {
                "id": uuid.uuid4(),
                "occurred_at": self.start + timedelta(seconds=len(self.rows)),
                "actor": actor,
                "action": action,
                "target": target,
                "outcome": outcome,
                "ip": "203.0.113.7",
                "user_agent": "test",
                "request_id": None,
                "detail": {},
            }
        )


def _columns(engine: Engine) -> set[str]:
    return {c["name"] for c in inspect(engine).get_columns("audit_event")}


def _subjects(engine: Engine) -> dict[uuid.UUID, tuple[str | None, str | None]]:
    columns = [Column("id", Uuid), Column("target", String)]
    if "target_email" in _columns(engine):
        columns.append(Column("target_email", String))
    table = Table("audit_event", MetaData(), *columns)  # typed: SQLite keeps uuids as text
    with engine.connect() as conn:
        rows = conn.execute(select(table)).all()
    return {r[0]: (r[1], r[2] if len(r) > 2 else None) for r in rows}


def _lower(target: str | None) -> str | None:
    return target.lower() if target and "@" in target else target


def test_backfill_and_downgrade(fresh_url: str) -> None:
    migrate.upgrade(fresh_url, BEFORE)
    history = History()
    engine = make_engine(fresh_url)
    try:
        assert "target_email" not in _columns(engine)
        with engine.begin() as conn:
            conn.execute(_old.insert(), history.rows)

        migrate.upgrade(fresh_url, AFTER)
        engine.dispose()
        assert "target_email" in _columns(engine)
        indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("audit_event")}
        assert indexes["ix_audit_event_target_email_occurred_at"] == [
            "target_email",
            "occurred_at",
        ]
        got = _subjects(engine)
        h = history
        expected = [
            (h.ada_sub, h.ada),  # sign_up: the username from ada's successful sign-in
            (h.ada_sub, h.ada),  # sign_up_confirmed
            (h.ada_sub, h.ada),  # sign_in
            (h.ada_sub, h.ada),  # sign_in_failed
            (h.ada_sub, None),  # profile_updated: named by username, left as it was
            (h.ada_sub, None),  # user_disabled
            (h.bob_sub, h.bob),  # invitation_created: bob signed in later
            (h.bob_sub, None),  # invitation_accepted
            (h.bob_sub, h.bob),  # sign_in
            (None, h.nobody),  # no account ever signed in with it: no username
            (None, h.twice),  # two accounts signed in with it: which one is unknown
            (None, h.twice),
            (None, h.twice),
            (None, None),  # token_refreshed named nobody
            (h.ada_sub, h.ada),  # the address as typed is ada's, lower-cased
        ]
        assert [got[r["id"]] for r in h.rows] == expected

        migrate.downgrade(fresh_url, BEFORE)
        engine.dispose()
        assert "target_email" not in _columns(engine)
        assert "ix_audit_event_target_email_occurred_at" not in {
            i["name"] for i in inspect(engine).get_indexes("audit_event")
        }
        back = _subjects(engine)
        # Addresses come back lower-cased (the case they were typed in is not kept).
        assert [back[r["id"]][0] for r in h.rows] == [_lower(r["target"]) for r in h.rows]
    finally:
        engine.dispose()
