"""OpenTelemetry traces (issue 16.5): on only when OTEL_EXPORTER_OTLP_ENDPOINT is set.

A local OTLP/HTTP receiver (a real HTTP server decoding the protobuf the SDK's exporter
sends) collects the spans of real requests: the FastAPI server span with the request id,
the botocore call to moto, SQLAlchemy statements on Postgres and Redis commands, all in the
request's trace; the access log line names that trace. Without the variable, nothing of
OpenTelemetry is even imported.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from authsvc import tracing
from authsvc.main import create_app
from tests.conftest import Emulator
from tests.conftest import make_settings as suite_settings
from tests.helpers import PASSWORD, confirmed_user, new_email


@dataclass
class Span:
    name: str
    trace_id: str
    kind: int
    attributes: dict[str, Any]
    scope: str


class Receiver:
    """An OTLP/HTTP traces endpoint on loopback: POST /v1/traces, protobuf bodies."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.paths: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.paths.append(self.path)
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                for resource in request.resource_spans:
                    for scoped in resource.scope_spans:
                        for span in scoped.spans:
                            receiver.spans.append(
                                Span(
                                    span.name,
                                    span.trace_id.hex(),
                                    span.kind,
                                    {a.key: _value(a.value) for a in span.attributes},
                                    scoped.scope.name,
                                )
                            )
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value"))


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    receiver = Receiver()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
    monkeypatch.setenv("OTEL_SERVICE_NAME", "authsvc-test")
    yield receiver
    receiver.close()


def test_request_cognito_database_and_redis_spans_share_the_trace(
    cognito: Emulator, database_url: str, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    settings = suite_settings(
        cognito,
        database_url,
        redis_url="redis://127.0.0.1:6379/0",
        rate_limits_enabled=True,
        rate_limit_sign_in_ip="1000/minute",
    )
    request_id = f"trace-{new_email('t').split('@')[0]}"
    caplog.set_level(logging.INFO, logger="authsvc.access")
    app = create_app(settings)
    with TestClient(app) as client:
        email = confirmed_user(client, app.state.authsvc.outbox)
        body = {"email": email, "password": "Wrong-passw0rd!"}
        response = client.post("/v1/auth/sign-in", json=body, headers={"X-Request-ID": request_id})
        assert response.status_code == 401, response.text
        assert client.get("/healthz").status_code == 200  # excluded from traces
    # The app's shutdown flushed the exporter: everything has reached the receiver.
    assert set(receiver.paths) == {"/v1/traces"}, receiver.paths

    [server] = [
        s for s in receiver.spans if s.attributes.get(tracing.REQUEST_ID_ATTRIBUTE) == request_id
    ]
    assert server.kind == 2  # SERVER
    assert server.scope == "opentelemetry.instrumentation.fastapi"
    assert "/v1/auth/sign-in" in server.name
    trace = [s for s in receiver.spans if s.trace_id == server.trace_id]
    scopes = {s.scope for s in trace}
    # botocore: the InitiateAuth call to moto, inside the request's trace.
    [cognito_call] = [s for s in trace if s.scope == "opentelemetry.instrumentation.botocore"]
    assert cognito_call.attributes.get("rpc.method") == "InitiateAuth", cognito_call
    assert cognito_call.kind == 3  # CLIENT
    assert "opentelemetry.instrumentation.redis" in scopes, scopes  # the rate limits
    # SQLAlchemy: statements on Postgres somewhere in this app's life (the revocation
    # poller, the audit writer, the request's own reads).
    sql = [s for s in receiver.spans if s.scope == "opentelemetry.instrumentation.sqlalchemy"]
    assert sql, {s.scope for s in receiver.spans}
    assert any(
        s.attributes.get("db.system") == "postgresql" or "postgresql" in str(s.attributes)
        for s in sql
    ), sql[0]
    assert not [s for s in receiver.spans if s.name.endswith("/healthz")]

    # The access log line carries the trace id next to the request id.
    [line] = [
        r
        for r in caplog.records
        if r.name == "authsvc.access" and getattr(r, "request_id", None) == request_id
    ]
    assert line.trace_id == server.trace_id  # type: ignore[attr-defined]


def test_sql_spans_inside_a_request(
    cognito: Emulator, database_url: str, receiver: Receiver
) -> None:
    app = create_app(suite_settings(cognito, database_url))
    with TestClient(app) as client:
        email = confirmed_user(client, app.state.authsvc.outbox)
        signed = client.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        token = signed.json().get("access_token")
        assert token, signed.text
        response = client.post(
            "/v1/auth/sign-out",
            headers={"Authorization": f"Bearer {token}", "X-Request-ID": "trace-sign-out"},
        )
        assert response.status_code == 204, response.text
    [server] = [
        s
        for s in receiver.spans
        if s.attributes.get(tracing.REQUEST_ID_ATTRIBUTE) == "trace-sign-out"
    ]
    in_request = [s for s in receiver.spans if s.trace_id == server.trace_id]
    scopes = {s.scope for s in in_request}
    # The revocation is written in the request: its INSERT is a child of the request.
    assert "opentelemetry.instrumentation.sqlalchemy" in scopes, scopes
    assert "opentelemetry.instrumentation.botocore" in scopes, scopes  # GlobalSignOut


def test_without_the_endpoint_nothing_is_imported() -> None:
    script = """
import os, sys
os.environ.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
from authsvc import tracing
from authsvc.config import Settings
from authsvc.main import create_app
app = create_app(Settings(cognito_user_pool_id="us-east-1_x", cognito_client_id="x",
                          database_url="sqlite://", secret_key="k" * 32))
assert not tracing.configured()
[ours] = [m for m in app.user_middleware if m.cls.__name__ == "AuthSvcMiddleware"]
assert ours.kwargs["traced"] is False
assert not any("OpenTelemetry" in m.cls.__name__ for m in app.user_middleware)
# FastAPI itself imports the OpenTelemetry API (its own hooks, which authsvc turns off);
# authsvc loads no SDK tracer, exporter or instrumentation.
loaded = sorted(
    m for m in sys.modules
    if m.startswith(("opentelemetry.sdk.trace", "opentelemetry.exporter",
                     "opentelemetry.instrumentation"))
)
print(loaded)
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", result.stdout


@pytest.mark.parametrize(
    "missing",
    [
        "opentelemetry.instrumentation.fastapi",
        "opentelemetry.instrumentation.botocore",
        "opentelemetry.instrumentation.redis",
        "opentelemetry.instrumentation.sqlalchemy",
        "opentelemetry.exporter.otlp.proto.http.trace_exporter",
    ],
)
def test_an_endpoint_without_the_packages_is_one_error_line(missing: str) -> None:
    # Any one of them missing (a partial install): the same line, and the app still starts.
    script = f"""
import logging, os, sys
sys.modules["{missing}"] = None  # as if not installed
os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = "http://127.0.0.1:9"
logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(levelname)s %(message)s")
from authsvc.config import Settings
from authsvc.main import create_app
app = create_app(Settings(cognito_user_pool_id="us-east-1_x", cognito_client_id="x",
                          database_url="sqlite://", secret_key="k" * 32))
[ours] = [m for m in app.user_middleware if m.cls.__name__ == "AuthSvcMiddleware"]
print("traced", ours.kwargs["traced"])
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "traced False" in result.stdout, result.stdout
    [line] = [li for li in result.stdout.splitlines() if "OTEL_EXPORTER_OTLP_ENDPOINT" in li]
    assert line.startswith("ERROR "), line
    assert "pip install 'authsvc[otel]'" in line, line
