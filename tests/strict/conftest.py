"""The HTTP flows run once more, through the strict Cognito layer, with a client secret.

``settings`` and ``app_client`` are overridden here (both: a session-scoped fixture is cached
per definition, so the root ``app_client`` would otherwise be reused with the root settings):
every app call to Cognito in this directory goes through ``StrictCognito``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from authsvc.config import Settings
from authsvc.main import create_app
from tests.conftest import Emulator, make_settings
from tests.strict.layer import StrictCognito


@pytest.fixture(scope="session")
def strict(cognito: Emulator) -> Iterator[StrictCognito]:
    layer = StrictCognito(cognito.endpoint_url, region=cognito.pool.region)
    layer.start()
    yield layer
    layer.stop()


@pytest.fixture(scope="session")
def strict_url(strict: StrictCognito) -> str:
    assert strict._server is not None
    return f"http://127.0.0.1:{strict._server.server_address[1]}"


@pytest.fixture(scope="session")
def settings(cognito: Emulator, database_url: str, strict_url: str) -> Settings:
    assert cognito.pool.client_secret, "the template's app client must be confidential"
    return make_settings(cognito, database_url, cognito_endpoint_url=strict_url)


@pytest.fixture(scope="session")
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
