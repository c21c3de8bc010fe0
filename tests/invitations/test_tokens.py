"""Invitation tokens: entropy, never at rest in the database, one answer for every dead
token (DESIGN §4)."""

from __future__ import annotations

import base64
import logging
import re
import string
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text
from sqlalchemy.engine import Engine

from authsvc import migrate
from authsvc.email.backends import ConsoleBackend
from authsvc.email.crypto import PayloadCipher
from authsvc.email.models import SENT, EmailOutbox
from authsvc.email.outbox import OutboxWorker
from authsvc.invitations.service import hash_token, new_token
from authsvc.main import create_app
from authsvc.state import AppState
from tests.conftest import create_database, drop_database, make_settings
from tests.helpers import assert_problem, new_email
from tests.invitations.support import (
    CHOSEN_PASSWORD,
    INVITATIONS,
    LINK_PREFIX,
    accept,
    invite,
    invite_and_link,
    lookup,
    next_token,
    set_row,
    state_of,
    wait_link,
)

URLSAFE = set(string.ascii_letters + string.digits + "-_")
SECRET_KEY = "a-test-secret-key-of-some-length"


def test_tokens_are_unique_with_at_least_256_bits():
    tokens = [new_token() for _ in range(1000)]
    assert len(set(tokens)) == 1000
    for token in tokens:
        assert len(token) >= 43
        assert set(token) <= URLSAFE
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 32


def every_value(engine: Engine) -> Iterator[tuple[str, str, str]]:
    """(table, column, str(value)) for every value of every table."""
    inspector = inspect(engine)
    with engine.connect() as conn:
        for table in inspector.get_table_names():
            result = conn.execute(text(f'SELECT * FROM "{table}"'))
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row, strict=True):
                    if value is not None:
                        yield table, column, str(value)


def assert_nowhere(engine: Engine, *secrets: str) -> int:
    scanned = 0
    for table, column, value in every_value(engine):
        scanned += 1
        for secret in secrets:
            assert secret not in value, f"{table}.{column} holds a token"
    return scanned


def test_database_dump_yields_no_token(client, admin, outbox):
    tokens: list[str] = []
    for _ in range(3):
        _, token = invite_and_link(client, admin, outbox, new_email("dump"))
        tokens.append(token)
    # A resent one too: both its old and new tokens must be absent.
    email = new_email("dump-resend")
    created, old = invite_and_link(client, admin, outbox, email)
    client.post(f"{INVITATIONS}/{created['id']}/resend", headers=admin.bearer)
    tokens += [old, next_token(outbox, email, old)]

    engine = state_of(client).db.engine
    links = [LINK_PREFIX + token for token in tokens]
    assert assert_nowhere(engine, *tokens, *links) > 0
    # The scan saw the rows: what is stored is the hash.
    with engine.connect() as conn:
        hashes = set(conn.scalars(text("SELECT token_hash FROM invitation")))
    assert hash_token(tokens[0]) in hashes
    assert hash_token(tokens[-1]) in hashes
    assert hash_token(old) not in hashes


# ------------------------------------------------------------------ outbox at rest


@pytest.fixture
def quiet_app(cognito, postgres_server) -> Iterator[tuple[TestClient, AppState, Engine]]:
    """The app on a database of its own, its outbox worker stopped: queued emails stay
    queued until the test delivers them."""
    url = create_database(postgres_server, prefix="authsvc_quiet")
    migrate.upgrade(url)
    app = create_app(make_settings(cognito, url, secret_key=SECRET_KEY))
    try:
        with TestClient(app, raise_server_exceptions=False) as quiet:
            state: AppState = app.state.authsvc
            state.outbox_worker.stop()
            yield quiet, state, state.db.engine
    finally:
        drop_database(postgres_server, url)


def test_outbox_payload_is_encrypted_and_erased_after_delivery(quiet_app, admin):
    quiet, state, engine = quiet_app
    email = new_email("sealed")
    response = invite(quiet, admin, email, given_name="Sealed")
    assert response.status_code == 201, response.text

    with state.db.sessions() as session:
        row = session.scalars(select(EmailOutbox).where(EmailOutbox.to_address == email)).one()
    assert row.status == "queued" and row.payload is not None
    opened = PayloadCipher(SECRET_KEY).open(row.payload)
    link = opened["link"]
    assert link.startswith(LINK_PREFIX) and link in opened["text"]
    token = link.removeprefix(LINK_PREFIX)
    for plain in (token, link, "accept-invitation", opened["subject"], "Sealed"):
        assert plain not in row.payload
    with pytest.raises(ValueError):
        PayloadCipher("another-secret-key-entirely").open(row.payload)
    assert_nowhere(engine, token, link)
    assert lookup(quiet, token).status_code == 200  # it is the live token

    box = state.outbox
    assert box is not None
    worker = OutboxWorker(state.db, PayloadCipher(SECRET_KEY), ConsoleBackend(box))
    assert worker.run_once() == 1
    assert wait_link(box, email) == link

    with state.db.sessions() as session:
        sent = session.get(EmailOutbox, row.id)
        assert sent is not None
        assert (sent.status, sent.payload, sent.attempts) == (SENT, None, 1)
        assert sent.sent_at is not None
    assert_nowhere(engine, token, link)


# ------------------------------------------------------------------ dead tokens


def without_request_id(response: Any) -> bytes:
    return re.sub(rb',?\s*"request_id"\s*:\s*"[^"]*"', b"", response.content)


def test_every_dead_token_gets_the_same_answer(client, admin, outbox):
    dead: dict[str, str] = {}

    created, token = invite_and_link(client, admin, outbox, new_email("used"))
    assert accept(client, token).status_code == 201
    dead["accepted"] = token

    created, token = invite_and_link(client, admin, outbox, new_email("revoked"))
    assert client.delete(f"{INVITATIONS}/{created['id']}", headers=admin.bearer).status_code == 204
    dead["revoked"] = token

    email = new_email("resent")
    created, token = invite_and_link(client, admin, outbox, email)
    assert client.post(f"{INVITATIONS}/{created['id']}/resend", headers=admin.bearer).is_success
    next_token(outbox, email, token)  # the new one went out: the old one is dead
    dead["resent"] = token

    created, token = invite_and_link(client, admin, outbox, new_email("expired"))
    set_row(client, created["id"], expires_at=datetime.now(UTC) - timedelta(seconds=1))
    dead["expired"] = token

    dead["unknown"] = new_token()

    for call in (lookup, accept):
        bodies = {}
        for reason, token in dead.items():
            response = call(client, token)
            assert_problem(response, 400, "invalid_invitation")
            bodies[reason] = without_request_id(response)
        assert len(set(bodies.values())) == 1, bodies


# ------------------------------------------------------------------ secrets stay secret


def test_temporary_password_and_token_never_leak(client, admin, outbox, monkeypatch, caplog):
    """The temporary password is never stored, logged or returned; the token and the chosen
    password are never logged — also when the saga crashes and is retried."""
    from authsvc.invitations import service as service_module

    temporaries: list[str] = []
    real = service_module.temporary_password

    def recording() -> str:
        temporaries.append(real())
        return temporaries[-1]

    monkeypatch.setattr(service_module, "temporary_password", recording)
    # Everything authsvc logs, and libraries at WARNING as logs.configure() pins them.
    caplog.set_level("DEBUG", logger="authsvc")
    email = new_email("secrets")
    _, token = invite_and_link(client, admin, outbox, email)

    service = state_of(client).invitations

    def crash(step: str) -> None:
        if step == "signed_in":
            raise RuntimeError("crash after signing in with the temporary password")

    monkeypatch.setattr(service, "fault", crash)
    responses = [accept(client, token)]
    assert responses[0].status_code == 500
    monkeypatch.setattr(service, "fault", lambda _step: None)
    responses.append(accept(client, token))
    assert responses[1].status_code == 201, responses[1].text
    assert len(temporaries) == 2 and len(set(temporaries)) == 2

    formatter = logging.Formatter()
    logged = "\n".join(
        formatter.format(record) + repr(record.__dict__) for record in caplog.records
    )
    assert "unhandled error" in logged  # the crash was logged, with its traceback
    for secret in (*temporaries, token, CHOSEN_PASSWORD):
        assert secret not in logged
    for response in responses:
        for temporary in temporaries:
            assert temporary not in response.text
            assert temporary not in str(response.headers)
    assert_nowhere(state_of(client).db.engine, *temporaries, token)
