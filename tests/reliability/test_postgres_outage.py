"""A Postgres outage under a running `authsvc serve` (issue: Reliability, 3).

The app reaches Postgres through ``TcpProxy``; the test closes it mid-run (nothing listens,
established connections are reset) and later opens it again on the same port. During the
outage the Cognito-only routes keep working and sign-out still takes effect on this
instance; routes that need the database answer 503 `upstream_unavailable` at once; /readyz
names the database; audit events wait in memory. After it, without a restart, everything
comes back and what was held in memory (audit events, the revocation) is in the database.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine, make_url

from tests.helpers import PASSWORD, new_email
from tests.reliability.conftest import (
    LoopThread,
    TcpProxy,
    assert_unavailable,
    bearer,
    reliability_env,
    sign_in,
)
from tests.security.support import (
    METRICS_HEADERS,
    direct_user,
    make_admin,
    start_serve,
    stop_serve,
)

pytestmark = pytest.mark.slow

# "At once": far below what a hung connection would cost (connect timeout, pool timeout).
FAST_S = 3.0
RECOVERY_S = 15.0


@dataclass
class Outage:
    client: httpx.Client
    proxy: TcpProxy
    direct: Engine  # the same database, not through the proxy
    cognito: Any
    admin_token: str

    def call(self, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, str]:
        """One request, tagged with a fresh request id, that must answer quickly."""
        request_id = f"outage-{uuid.uuid4().hex}"
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        started = time.monotonic()
        response = self.client.request(method, path, headers=headers, **kwargs)
        took = time.monotonic() - started
        assert took < FAST_S, f"{method} {path} took {took:.1f}s during the outage"
        return response, request_id

    def metrics(self) -> dict[str, float]:
        lines = self.client.get("/metrics", headers=METRICS_HEADERS).text.splitlines()
        pairs = (line.split() for line in lines if line and not line.startswith("#"))
        return {parts[0]: float(parts[-1]) for parts in pairs if len(parts) == 2}


@pytest.fixture(scope="module")
def postgres_proxy(loop_thread: LoopThread, postgres_server: str) -> Iterator[TcpProxy]:
    server = make_url(postgres_server)
    proxy = TcpProxy(loop_thread, (server.host or "127.0.0.1", server.port or 5432))
    proxy.open()
    yield proxy
    proxy.close()


@pytest.fixture(scope="module")
def outage(
    cognito: Any,
    module_database: str,
    postgres_proxy: TcpProxy,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Outage]:
    proxied = make_url(module_database).set(port=postgres_proxy.port)
    env = reliability_env(
        cognito,
        proxied.render_as_string(hide_password=False),
        None,  # Cognito straight, not through a proxy
        db_pool_timeout="2",
        db_connect_timeout="2",
    )
    (instance,) = start_serve(["outage"], env, tmp_path_factory.mktemp("outage"))
    direct = create_engine(module_database)
    try:
        with httpx.Client(base_url=instance.base_url, timeout=30.0) as client:
            admin = sign_in(client, make_admin(cognito), PASSWORD)["access_token"]
            yield Outage(client, postgres_proxy, direct, cognito, admin)
    finally:
        postgres_proxy.open()
        direct.dispose()
        stop_serve([instance])


def _wait(
    what: str,
    check: Callable[[], bool],
    timeout: float = RECOVERY_S,
    show: Callable[[], object] = lambda: "",
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{what}: not within {timeout}s {show()}"
        time.sleep(0.1)


def _checks(response: httpx.Response) -> dict[str, str]:
    return {c["name"]: c["status"] for c in response.json()["checks"]}


def _audited(engine: Engine, request_ids: list[str]) -> dict[str, tuple[str, str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT request_id, action, outcome, detail FROM audit_event"
                " WHERE request_id = ANY(:ids)"
            ),
            {"ids": request_ids},
        ).all()
    return {r.request_id: (r.action, r.outcome, r.detail) for r in rows}


def _revoked_at_us(engine: Engine, sub: str) -> int | None:
    with engine.connect() as conn:
        value = conn.execute(
            text("SELECT revoked_at_us FROM token_revocation WHERE sub = :sub"), {"sub": sub}
        ).scalar()
    return None if value is None else int(value)


def _create_invitation(o: Outage) -> tuple[httpx.Response, str]:
    body = {"email": new_email("reloutage"), "family_name": "Outage"}
    return o.call("POST", "/v1/invitations", json=body, headers=bearer(o.admin_token))


def test_postgres_outage_and_recovery_without_restart(outage: Outage) -> None:
    o = outage
    admin = bearer(o.admin_token)
    email = direct_user(o.cognito, tag="reloutage")
    before = sign_in(o.client, email, PASSWORD)
    sub = str(jwt.decode(before["access_token"], options={"verify_signature": False})["sub"])
    invited, _ = _create_invitation(o)
    assert invited.status_code == 201, invited.text

    o.proxy.close()  # the outage: nothing listens, live connections are reset

    # Cognito and local verification: unaffected.
    signed_in, sign_in_id = o.call(
        "POST", "/v1/auth/sign-in", json={"email": email, "password": PASSWORD}
    )
    assert signed_in.status_code == 200, signed_in.text
    token = signed_in.json()["access_token"]
    refreshed, _ = o.call(
        "POST", "/v1/auth/refresh", json={"refresh_token": before["refresh_token"]}
    )
    assert refreshed.status_code == 200, refreshed.text
    me, _ = o.call("GET", "/v1/me", headers=bearer(token))
    assert me.status_code == 200 and me.json()["email"] == email, me.text
    session, _ = o.call("GET", "/v1/auth/session", headers=bearer(token))
    assert session.status_code == 200 and session.json()["sub"] == sub, session.text

    # The database's own routes: 503 at once, never 500, never a hang.
    listed, _ = o.call("GET", "/v1/invitations", headers=admin)
    assert_unavailable(listed)
    created, create_id = _create_invitation(o)
    assert_unavailable(created)
    looked_up, _ = o.call("POST", "/v1/invitations/lookup", json={"token": "x" * 43})
    assert_unavailable(looked_up)
    ready, _ = o.call("GET", "/readyz")
    assert ready.status_code == 503, ready.text
    assert _checks(ready) == {
        "database": "fail",
        "cognito": "ok",
        "revocation_ledger": "ok",  # read at start-up: known tokens are judged as before
    }, ready.text

    # Sign-out still ends the session here; the revocation waits in memory.
    signed_out, sign_out_id = o.call("POST", "/v1/auth/sign-out", headers=bearer(token))
    assert signed_out.status_code == 204, signed_out.text
    signed_out_at_us = time.time_ns() // 1000
    for path in ("/v1/auth/session", "/v1/me"):
        refused, _ = o.call("GET", path, headers=bearer(token))
        assert refused.status_code == 401 and refused.json()["code"] == "invalid_token", path

    _wait(
        "audit writes failing, not blocking",
        lambda: o.metrics().get("authsvc_audit_write_failures", 0) > 0,
        timeout=5,
    )
    metrics = o.metrics()
    assert metrics["authsvc_audit_events_pending"] >= 2, metrics  # sign-in, sign-out at least
    assert metrics["authsvc_revocations_unsaved"] == 1, metrics

    o.proxy.open()  # the database is back; the app was not restarted

    _wait("/readyz back to 200", lambda: o.client.get("/readyz").status_code == 200)
    listed_again = o.client.get("/v1/invitations", headers=admin)
    assert listed_again.status_code == 200, listed_again.text
    assert invited.json()["id"] in {i["id"] for i in listed_again.json()["items"]}
    created_again, _ = _create_invitation(o)
    assert created_again.status_code == 201, created_again.text

    # What waited in memory is in the database now, where other instances read it.
    wanted = [sign_in_id, create_id, sign_out_id]
    _wait(
        "buffered audit events written",
        lambda: len(_audited(o.direct, wanted)) == 3,
        show=lambda: (_audited(o.direct, wanted), wanted, o.metrics()),
    )
    audited = _audited(o.direct, wanted)
    assert audited[sign_in_id][:2] == ("sign_in", "success")
    assert audited[sign_out_id][:2] == ("signed_out", "success")
    action, outcome, detail = audited[create_id]
    assert (action, outcome) == ("invitation_created", "failure")
    assert detail["code"] == "upstream_unavailable", detail  # what the client was told
    _wait("revocation written", lambda: (_revoked_at_us(o.direct, sub) or 0) > 0)
    revoked_at = _revoked_at_us(o.direct, sub)
    assert revoked_at is not None and revoked_at <= signed_out_at_us
    assert revoked_at > signed_out_at_us - 10_000_000  # the outage's sign-out, not older
    _wait(
        "nothing left in memory",
        lambda: (
            o.metrics()["authsvc_revocations_unsaved"] == 0
            and o.metrics()["authsvc_audit_events_pending"] == 0
        ),
        show=o.metrics,
    )
