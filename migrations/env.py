"""Alembic environment: the URL comes from the caller (authsvc migrate) or AUTHSVC_DATABASE_URL."""

from __future__ import annotations

import os

from alembic import context
from sqlalchemy import Connection, text

import authsvc.models  # noqa: F401  (registers every table on Base.metadata)
from authsvc.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("AUTHSVC_DATABASE_URL")
    if not url:
        raise RuntimeError("AUTHSVC_DATABASE_URL is not set")
    return str(url)


# Several tasks may start at once (`authsvc migrate && authsvc serve` in each container):
# on Postgres they take turns on this advisory lock, and the later ones find nothing to do.
MIGRATION_LOCK_ID = 0x617574687376  # "authsv"


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(_url())
    try:
        with engine.connect() as conn:
            postgres = conn.dialect.name == "postgresql"
            if postgres:
                conn.execute(text("SELECT pg_advisory_lock(:id)"), {"id": MIGRATION_LOCK_ID})
                conn.commit()
            try:
                _configure(conn)
                with context.begin_transaction():
                    context.run_migrations()
            finally:
                if postgres:
                    conn.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": MIGRATION_LOCK_ID})
                    conn.commit()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
