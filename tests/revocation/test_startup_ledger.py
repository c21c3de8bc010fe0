"""An instance started while the database is down (issue 11, item 7).

Until its first successful read of the revocation ledger, it cannot know what was revoked
before it started: it refuses every token issued up to its start-up second (a refresh gets
one it can judge) and /readyz says `revocation_ledger: fail`. After the first sync, tokens
from before start-up are judged by the ledger as usual.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from authsvc.db import Database
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import Tokens, sign_in, signed_in_user


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def down_app(cognito: Any, database_url: str) -> Iterator[TestClient]:
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        pytest.skip("needs a database server to be down")  # laptops without Postgres only
    dead = url.set(host="127.0.0.1", port=closed_port()).render_as_string(hide_password=False)
    app = create_app(make_settings(cognito, dead, db_connect_timeout=1))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def checks(client: TestClient) -> dict[str, str]:
    return {c["name"]: c["status"] for c in client.get("/readyz").json()["checks"]}


@pytest.fixture
def earlier(client: TestClient, outbox: Any) -> tuple[str, Tokens, Tokens]:
    """Signed in before ``down_app`` starts (list it first): one live token, one revoked."""
    email, before = signed_in_user(client, outbox)
    _, revoked = signed_in_user(client, outbox)
    assert client.post("/v1/auth/sign-out", headers=revoked.bearer).status_code == 204
    return email, before, revoked


def test_tokens_from_before_start_up_wait_for_the_first_sync(
    earlier, down_app, database_url
) -> None:
    email, before, revoked = earlier
    registry = down_app.app.state.authsvc.revocations
    assert down_app.get("/v1/auth/session", headers=before.bearer).status_code == 401
    assert down_app.get("/readyz").status_code == 503
    assert checks(down_app)["revocation_ledger"] == "fail"

    # A token issued after start-up (a later second) is judged as usual.
    time.sleep(1.05 - time.time() % 1)
    fresh = sign_in(down_app, email)
    assert down_app.get("/v1/auth/session", headers=fresh.bearer).status_code == 200

    # The database is back (here: the registry reads the real one): the first sync lifts
    # the refusal, and the ledger still kills what was revoked.
    good = Database(database_url)
    try:
        registry.db = good
        registry.sync()
        registry.check_synced()
        assert checks(down_app)["revocation_ledger"] == "ok"
        assert down_app.get("/v1/auth/session", headers=before.bearer).status_code == 200
        assert down_app.get("/v1/auth/session", headers=revoked.bearer).status_code == 401
    finally:
        registry.db.dispose()
