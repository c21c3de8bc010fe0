"""Fixtures and helpers for the audit tests: an admin, and the log read through the API
(which flushes the in-memory buffer first) or straight from the ``audit_event`` table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from authsvc.audit.models import AuditEvent
from tests.admin.support import AUDIT, flat, make_admin, state_of, unthrottled_client, walk
from tests.helpers import Tokens


@pytest.fixture(scope="session")
def app_client(cognito: Any, database_url: str) -> Iterator[TestClient]:
    """Overrides the shared app for these tests: the same app without the outbound budget."""
    yield from unthrottled_client(cognito, database_url)


@pytest.fixture(scope="session")
def audit_admin(app_client: TestClient, cognito: Any) -> Tokens:
    box = state_of(app_client).outbox
    assert box is not None
    return make_admin(app_client, box, cognito)[1]


def events(client: TestClient, admin: Tokens, **filters: Any) -> list[dict[str, Any]]:
    """Every event matching ``filters``, newest first (all pages)."""
    return flat(walk(client, admin, AUDIT, limit=100, **filters))


def one(items: list[dict[str, Any]], action: str, outcome: str = "success") -> dict[str, Any]:
    found = [i for i in items if i["action"] == action and i["outcome"] == outcome]
    assert len(found) == 1, (action, outcome, items)
    return found[0]


def table_rows(client: TestClient) -> list[AuditEvent]:
    """The whole ``audit_event`` table, after writing what is buffered."""
    state = state_of(client)
    state.audit.flush()
    with state.db.sessions() as session:
        return list(session.scalars(select(AuditEvent)))
