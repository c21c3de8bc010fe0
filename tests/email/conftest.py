"""Fixtures for the email tests: a database of their own (the worker delivers whatever is
due in its database, so it must not share one with a running app)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import delete

from authsvc import migrate
from authsvc.db import Database
from authsvc.email.models import EmailOutbox
from tests.conftest import create_database, drop_database


@pytest.fixture(scope="session")
def email_db_url(postgres_server: str) -> Iterator[str]:
    url = create_database(postgres_server, prefix="authsvc_email")
    migrate.upgrade(url)
    yield url
    drop_database(postgres_server, url)


@pytest.fixture
def email_db(email_db_url: str) -> Iterator[Database]:
    db = Database(email_db_url)
    with db.sessions() as session, session.begin():
        session.execute(delete(EmailOutbox))
    yield db
    db.dispose()
