"""Fixtures for the administration tests: one signed-in admin per run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.admin.support import make_admin, state_of, unthrottled_client
from tests.helpers import Tokens


@pytest.fixture(scope="session")
def app_client(cognito: Any, database_url: str) -> Iterator[TestClient]:
    """Overrides the shared app for these tests: the same app without the outbound budget."""
    yield from unthrottled_client(cognito, database_url)


@pytest.fixture(scope="session")
def admin(app_client: TestClient, cognito: Any) -> Tokens:
    """A member of the admin group (the seeded dev admin does not exist in tests)."""
    box = state_of(app_client).outbox
    assert box is not None
    return make_admin(app_client, box, cognito)[1]
