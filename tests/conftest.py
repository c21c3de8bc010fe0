"""Shared fixtures: moto's Cognito in server mode over real HTTP, a real Postgres database
migrated by Alembic once per run, and the real app on top of both.

Postgres is required under CI=true: a missing server fails the run instead of skipping.
On a laptop without Postgres, Postgres-only tests skip with a reason, and app tests use
a SQLite file migrated by the same Alembic scripts.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from authsvc import migrate
from authsvc.config import Settings
from authsvc.dev.emulator import (
    EmbeddedCognito,
    ProvisionedPool,
    default_template_path,
    load_template,
    provision,
)
from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app

os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
POSTGRES_ADMIN_URL = os.environ.get(
    "AUTHSVC_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
HOW_TO_RUN = (
    "Postgres is not reachable at AUTHSVC_TEST_POSTGRES_URL "
    f"({POSTGRES_ADMIN_URL}); start one (see README, 'Running the tests') to run these tests"
)


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_ADMIN_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable Postgres server (fails under CI, skips elsewhere)."""
    if not _postgres_available():
        if IN_CI:
            pytest.fail(HOW_TO_RUN + " — required under CI=true")
        pytest.skip(HOW_TO_RUN)
    return POSTGRES_ADMIN_URL


def create_database(admin_url: str, prefix: str = "authsvc_t") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    name = make_url(url).database
    engine = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    engine.dispose()


@pytest.fixture(scope="session")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh Postgres database for this run, migrated to head by Alembic."""
    url = create_database(postgres_server)
    migrate.upgrade(url)
    yield url
    drop_database(postgres_server, url)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app's database: Postgres here and in CI; SQLite only on a laptop without it."""
    if _postgres_available():
        url = create_database(POSTGRES_ADMIN_URL)
        migrate.upgrade(url)
        yield url
        drop_database(POSTGRES_ADMIN_URL, url)
        return
    if IN_CI:
        pytest.fail(HOW_TO_RUN + " — required under CI=true")
    path = Path(tmp_path_factory.mktemp("db")) / "authsvc.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    yield url


@dataclass
class Emulator:
    endpoint_url: str
    pool: ProvisionedPool
    client: Any  # boto3 cognito-idp client


@pytest.fixture(scope="session")
def cognito() -> Iterator[Emulator]:
    emulator = EmbeddedCognito()
    endpoint = emulator.start()
    client = emulator.client()
    pool = provision(client, load_template(default_template_path()))
    yield Emulator(endpoint, pool, client)
    emulator.stop()


def make_settings(cognito: Emulator, database_url: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cognito_region": cognito.pool.region,
        "cognito_user_pool_id": cognito.pool.user_pool_id,
        "cognito_client_id": cognito.pool.client_id,
        # The template's client is confidential: every app in the suite sends SECRET_HASH.
        "cognito_client_secret": cognito.pool.client_secret,
        "cognito_endpoint_url": cognito.endpoint_url,
        "database_url": database_url,
        "dev_mode": True,
        "public_app_url": "http://app.example.test",
        # Every TestClient request comes from one address: per-IP limits would trip the
        # suite. tests/security builds apps with the limits on.
        "rate_limits_enabled": False,
        # Every app on a test database shares one key: each app's outbox worker may claim
        # any queued email in that database, and must be able to read it.
        "secret_key": "test-suite-secret-key-0123456789",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture(scope="session")
def settings(cognito: Emulator, database_url: str) -> Settings:
    return make_settings(cognito, database_url)


@pytest.fixture(scope="session")
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(app_client: TestClient) -> TestClient:
    return app_client


@pytest.fixture
def outbox(app_client: TestClient) -> DevOutbox:
    box = app_client.app.state.authsvc.outbox  # type: ignore[attr-defined]
    assert box is not None
    return box
