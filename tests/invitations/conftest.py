"""Fixtures shared by the invitation tests."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.helpers import Tokens
from tests.invitations.support import make_admin, state_of


@pytest.fixture(scope="session")
def admin(app_client: TestClient, cognito: Any) -> Tokens:
    """A signed-in member of the admin group (the seeded admin does not exist in tests)."""
    box = state_of(app_client).outbox
    assert box is not None
    return make_admin(app_client, box, cognito)
