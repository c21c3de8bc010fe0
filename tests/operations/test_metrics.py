"""/metrics from prometheus-client (issue 16.5), after real requests against moto over HTTP
and the real Postgres: what each metric counts, by which labels.

One process's registry is shared by every app the test process builds, so each test
compares a scrape before with one after what it does.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from authsvc import migrate
from authsvc.email.crypto import PayloadCipher
from authsvc.email.outbox import Outbox
from authsvc.main import create_app
from authsvc.metrics import REQUEST_BUCKETS
from tests.conftest import POSTGRES_ADMIN_URL, Emulator, create_database, drop_database
from tests.conftest import make_settings as suite_settings
from tests.helpers import PASSWORD, confirmed_user, new_email, sign_in
from tests.operations.support import Samples, free_port, parse_metrics, value

REQUEST = "authsvc_request_duration_seconds"
COGNITO = "authsvc_cognito_call_duration_seconds"


def _scrape(client: TestClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse_metrics(response.text)


def _delta(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


class TestRequests:
    def test_latency_histogram_by_route_template_method_and_status(
        self, client: TestClient
    ) -> None:
        before = _scrape(client)
        for _ in range(3):
            assert client.get("/healthz").status_code == 200
        invitation = uuid.uuid4()
        assert client.get(f"/v1/invitations/{invitation}").status_code == 401
        body = {"email": new_email("metricsreq"), "password": "Wrong-passw0rd!"}
        assert client.post("/v1/auth/sign-in", json=body).status_code == 401
        assert client.request("BREW", "/healthz").status_code == 405
        response = client.get("/metrics")
        after = parse_metrics(response.text)

        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        assert _delta(before, after, f"{REQUEST}_count", **healthz) == 3
        assert _delta(before, after, "authsvc_requests_total", **healthz) == 3
        assert _delta(before, after, f"{REQUEST}_sum", **healthz) > 0
        # Cumulative buckets: every bound listed, +Inf equal to the count, never decreasing.
        counts = [
            value(after, f"{REQUEST}_bucket", le=str(float(bound)), **healthz)
            for bound in REQUEST_BUCKETS
        ] + [value(after, f"{REQUEST}_bucket", le="+Inf", **healthz)]
        assert counts == sorted(counts), counts
        assert counts[-1] == value(after, f"{REQUEST}_count", **healthz)
        assert _delta(before, after, f"{REQUEST}_bucket", le="+Inf", **healthz) == 3

        template = {"route": "/v1/invitations/{invitation_id}", "method": "GET", "status": "401"}
        assert _delta(before, after, f"{REQUEST}_count", **template) == 1
        assert str(invitation) not in response.text  # the template, never the raw path
        sign_in_401 = {"route": "/v1/auth/sign-in", "method": "POST", "status": "401"}
        assert _delta(before, after, f"{REQUEST}_count", **sign_in_401) == 1
        # A method no route knows is one label value, not whatever the client sent.
        other = {"route": "/healthz", "method": "OTHER", "status": "405"}
        assert _delta(before, after, f"{REQUEST}_count", **other) == 1
        assert 'method="BREW"' not in response.text


class TestCognito:
    def test_latency_histogram_by_operation_and_outcome_class(
        self, client: TestClient, outbox: Any
    ) -> None:
        email = confirmed_user(client, outbox)
        before = _scrape(client)
        sign_in(client, email)
        wrong = {"email": email, "password": PASSWORD + "x"}
        assert client.post("/v1/auth/sign-in", json=wrong).status_code == 401
        after = _scrape(client)
        ok = {"operation": "sign_in", "outcome": "ok"}
        refused = {"operation": "sign_in", "outcome": "client_error"}
        assert _delta(before, after, f"{COGNITO}_count", **ok) == 1
        assert _delta(before, after, f"{COGNITO}_count", **refused) == 1
        assert _delta(before, after, "authsvc_cognito_calls_total", **refused) == 1
        assert _delta(before, after, f"{COGNITO}_sum", **ok) > 0
        assert _delta(before, after, f"{COGNITO}_bucket", le="+Inf", **ok) == 1


class TestCounters:
    def test_rate_limit_rejections_by_rule(self, cognito: Emulator, database_url: str) -> None:
        settings = suite_settings(
            cognito, database_url, rate_limits_enabled=True, rate_limit_sign_in_ip="2/minute"
        )
        with TestClient(create_app(settings)) as client:
            before = _scrape(client)
            body = {"email": new_email("metricsrl"), "password": "Wrong-passw0rd!"}
            codes = [client.post("/v1/auth/sign-in", json=body).status_code for _ in range(3)]
            assert codes == [401, 401, 429], codes
            after = _scrape(client)
        rule = {"rule": "sign_in_ip"}
        assert _delta(before, after, "authsvc_rate_limit_rejections_total", **rule) == 1
        too_many = {"route": "/v1/auth/sign-in", "method": "POST", "status": "429"}
        assert _delta(before, after, f"{REQUEST}_count", **too_many) == 1

    def test_jwks_fetches_by_outcome(self, cognito: Emulator, database_url: str) -> None:
        with TestClient(create_app(suite_settings(cognito, database_url))) as client:
            first = _scrape(client)
        # Start-up prefetches the pool's keys: one more successful fetch.
        with TestClient(create_app(suite_settings(cognito, database_url))) as client:
            second = _scrape(client)
        assert _delta(first, second, "authsvc_jwks_fetches_total", outcome="ok") == 1
        closed = f"http://127.0.0.1:{free_port()}/jwks.json"
        settings = suite_settings(cognito, database_url, cognito_jwks_url=closed)
        with TestClient(create_app(settings)) as client:
            third = _scrape(client)
        assert _delta(second, third, "authsvc_jwks_fetches_total", outcome="error") == 1
        assert _delta(second, third, "authsvc_jwks_fetches_total", outcome="ok") == 0

    def test_revocations(self, client: TestClient, outbox: Any) -> None:
        tokens = sign_in(client, confirmed_user(client, outbox))
        before = _scrape(client)
        assert client.post("/v1/auth/sign-out", headers=tokens.bearer).status_code == 204
        after = _scrape(client)
        assert _delta(before, after, "authsvc_revocations_total", stored="saved") == 1
        assert _delta(before, after, "authsvc_revocations_total", stored="held") == 0
        assert value(after, "authsvc_revocations_unsaved") == 0


@pytest.fixture
def own_database(postgres_server: str) -> Iterator[str]:
    """A database of this test's own: its outbox holds only what the test queues."""
    url = create_database(postgres_server, prefix="authsvc_metrics")
    migrate.upgrade(url)
    yield url
    drop_database(POSTGRES_ADMIN_URL, url)


class TestOutbox:
    def test_backlog_and_delivery_failures(self, cognito: Emulator, own_database: str) -> None:
        # SMTP on a port nobody listens on: every delivery fails and is retried later.
        settings = suite_settings(
            cognito,
            own_database,
            email_backend="smtp",
            smtp_host="127.0.0.1",
            smtp_port=free_port(),
            smtp_starttls=False,
            email_from="authsvc@example.test",
            outbox_poll_seconds=0.2,
        )
        with TestClient(create_app(settings)) as client:
            before = _scrape(client)
            assert value(before, "authsvc_outbox_backlog") == 0
            state = client.app.state.authsvc  # type: ignore[attr-defined]
            queue = Outbox(PayloadCipher(settings.secret_key.get_secret_value()))
            queue.on_commit = state.outbox_worker.wake
            with state.db.sessions() as session, session.begin():
                for _ in range(3):
                    queue.enqueue(
                        session, kind="metrics_test", to=new_email("mx"), subject="s", text="t"
                    )
            failed = {"kind": "metrics_test", "final": "false"}
            after = before
            for _ in range(300):  # the worker tries each message once, soon
                after = _scrape(client)
                if _delta(before, after, "authsvc_outbox_delivery_failures_total", **failed) >= 3:
                    break
            assert _delta(before, after, "authsvc_outbox_delivery_failures_total", **failed) >= 3
            # Read at scrape time (cached a few seconds): the three are still waiting.
            state.outbox_worker._backlog = None  # past the cache, without waiting for it
            final = _scrape(client)
            assert value(final, "authsvc_outbox_backlog") == 3
            assert value(final, "authsvc_outbox_oldest_seconds") >= 0
            assert _delta(before, final, "authsvc_emails_sent_total", kind="metrics_test") == 0


class TestProcessAndState:
    def test_process_metrics_and_state_gauges_are_present(self, client: TestClient) -> None:
        samples = _scrape(client)
        assert value(samples, "process_resident_memory_bytes") > 0
        assert value(samples, "process_cpu_seconds_total") > 0
        assert ("process_open_fds", frozenset()) in samples
        for gauge in (
            "authsvc_audit_events_pending",
            "authsvc_audit_write_failures",
            "authsvc_rate_limit_storage_errors",
            "authsvc_cognito_budget_refused",
            "authsvc_revocations_unsaved",
        ):
            assert (gauge, frozenset()) in samples, gauge
        assert value(samples, "authsvc_revocation_sync_healthy") == 1

    def test_a_sampler_naming_no_gauge_does_not_stop_the_flush(self, client: TestClient) -> None:
        from authsvc import metrics

        def sampler() -> dict[str, float]:
            return {"authsvc_no_such_gauge": 1.0}

        before = _scrape(client)
        assert client.get("/healthz").status_code == 200
        metrics.add_sampler(sampler)
        try:
            metrics.flush()  # raised KeyError, leaving the process metrics unsampled
        finally:
            metrics.remove_sampler(sampler)
        after = _scrape(client)
        healthz = {"route": "/healthz", "method": "GET", "status": "200"}
        assert _delta(before, after, "authsvc_requests_total", **healthz) == 1
        assert ("authsvc_no_such_gauge", frozenset()) not in after
