"""The email outbox across a crash of its worker (issue: Reliability, 5).

`authsvc serve` (AUTHSVC_EMAIL_BACKEND=smtp) emails three invitations to an aiosmtpd server
in this process that holds its answer to the first DATA. While the worker waits for that
answer the process is killed (SIGKILL); a new `authsvc serve` on the same database takes over
once the claim's lease (AUTHSVC_OUTBOX_LEASE_SECONDS) lapses.

The guarantee is **at least once**: nothing is lost, and the message whose delivery was
interrupted arrives twice — the server had stored it before the worker died, and the worker
could not know (RFC 1047's duplicate). Every copy carries the same Message-ID and
X-Authsvc-Dedup-Key (the outbox row id), so a receiver can drop the duplicate. Every row
ends `sent` with its payload (which holds the invitation link) erased.
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import PASSWORD, new_email
from tests.reliability.conftest import SmtpInbox, bearer, reliability_env, sign_in, smtp_server
from tests.security.support import make_admin, start_serve, stop_serve

pytestmark = pytest.mark.slow

MESSAGES = 3
STALL_S = 5.0  # the SMTP server holds its answer to the first DATA this long
LEASE_S = "2"


def _rows(engine: Any) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT id, to_address, status, payload, sent_at FROM email_outbox")
        ).all()
    return {str(r.id): r for r in rows}


def test_killed_worker_loses_nothing_and_duplicates_share_their_id(
    cognito: Any, module_database: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    inbox = SmtpInbox(stall_first=STALL_S)
    engine = create_engine(module_database)
    workdir = tmp_path_factory.mktemp("outbox")
    try:
        with smtp_server(inbox) as smtp_port:
            env = reliability_env(
                cognito,
                module_database,
                None,
                email_backend="smtp",
                smtp_host="127.0.0.1",
                smtp_port=str(smtp_port),
                smtp_starttls="false",
                outbox_lease_seconds=LEASE_S,
                outbox_poll_seconds="0.25",
            )
            (first,) = start_serve(["first"], env, workdir)
            try:
                with httpx.Client(base_url=first.base_url, timeout=30.0) as client:
                    admin = bearer(sign_in(client, make_admin(cognito), PASSWORD)["access_token"])
                    for _ in range(MESSAGES):
                        body = {"email": new_email("reloutbox"), "family_name": "Outbox"}
                        created = client.post("/v1/invitations", json=body, headers=admin)
                        assert created.status_code == 201, created.text
                # Mid-send: the server has the message, the worker waits for its answer.
                assert inbox.first_data.wait(15), "the worker never sent the first message"
                first.process.kill()
                first.process.wait(timeout=10)
            finally:
                stop_serve([first])

            before = _rows(engine)
            assert len(before) == MESSAGES
            statuses = sorted(r.status for r in before.values())
            assert statuses == ["queued"] * (MESSAGES - 1) + ["sending"], statuses
            (interrupted,) = [i for i, r in before.items() if r.status == "sending"]
            assert inbox.received()[0]["X-Authsvc-Dedup-Key"] == interrupted

            (second,) = start_serve(["second"], env, workdir)
            try:
                deadline = time.monotonic() + 30
                while any(r.status != "sent" for r in _rows(engine).values()):
                    assert time.monotonic() < deadline, {
                        i: (r.status, r.to_address) for i, r in _rows(engine).items()
                    }
                    time.sleep(0.1)
                inbox.wait_for(lambda ms: len(ms) == MESSAGES + 1, timeout=5)
            finally:
                stop_serve([second])
    finally:
        engine.dispose()

    after = _rows(engine)
    for row in after.values():
        assert row.status == "sent" and row.sent_at is not None
        assert row.payload is None  # the invitation link is gone from the database

    copies: dict[str, list[Any]] = defaultdict(list)
    for message in inbox.received():
        copies[message["X-Authsvc-Dedup-Key"]].append(message)
    assert set(copies) == set(after), "a message was lost, or one came from nowhere"
    for row_id, sent in copies.items():
        # At least once: exactly the interrupted message came twice.
        assert len(sent) == (2 if row_id == interrupted else 1), (row_id, len(sent))
        assert {m["To"] for m in sent} == {after[row_id].to_address}
        message_ids = {m["Message-ID"] for m in sent}
        assert len(message_ids) == 1, message_ids  # every copy: the same Message-ID
        assert row_id in message_ids.pop()
