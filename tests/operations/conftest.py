from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import POSTGRES_ADMIN_URL, create_database, drop_database


@pytest.fixture
def empty_database(postgres_server: str) -> Iterator[str]:
    """A Postgres database that was never migrated."""
    url = create_database(postgres_server, prefix="authsvc_ops")
    yield url
    drop_database(POSTGRES_ADMIN_URL, url)
