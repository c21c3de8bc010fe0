"""OpenTelemetry traces, on only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

Off (the default), nothing here imports OpenTelemetry and the request path pays one boolean
test. On (``pip install 'authsvc[otel]'``), spans go by OTLP over HTTP/protobuf to that
endpoint (``/v1/traces`` appended, as the SDK does; the standard ``OTEL_*`` variables apply:
``OTEL_SERVICE_NAME``, ``OTEL_TRACES_SAMPLER``, ``OTEL_EXPORTER_OTLP_HEADERS``, ...) from the
libraries' own instrumentations:

- FastAPI: one server span per request, with the request id as ``authsvc.request_id``; the
  access log line carries the trace id (``trace_id``), so either finds the other;
- botocore: a client span per Cognito call (and SES);
- SQLAlchemy: a span per statement. The released instrumentation declares
  ``sqlalchemy < 2.1`` and patches ``create_engine`` once per process, so authsvc attaches
  the instrumentation's own ``EngineTracer`` to its engine directly (logged at start-up when
  the installed SQLAlchemy is outside the declared range);
- Redis: a client span per command (rate limits, the Cognito budget).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

log = logging.getLogger("authsvc.tracing")

ENDPOINT_ENV = "OTEL_EXPORTER_OTLP_ENDPOINT"
REQUEST_ID_ATTRIBUTE = "authsvc.request_id"
# Liveness probes and scrapes would drown the traces: not traced unless the standard
# variable says otherwise.
DEFAULT_EXCLUDED_URLS = "/healthz$,/metrics$"

_lock = threading.Lock()
_provider: Any = None  # the process's TracerProvider while any app is traced
_users = 0
_get_current_span: Any = None


def configured() -> bool:
    """Tracing is wanted: an OTLP endpoint is set and the SDK is not disabled."""
    if not os.environ.get(ENDPOINT_ENV, "").strip():
        return False
    return os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() != "true"


class Traced:
    """One app's tracing; ``shutdown()`` at the app's end (the last one flushes and stops
    the exporter, and removes the process-wide instrumentations)."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider
        self._closed = False

    def shutdown(self) -> None:
        global _provider, _users
        with _lock:
            if self._closed:
                return
            self._closed = True
            _users -= 1
            if _users > 0:
                self.provider.force_flush()
                return
            from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
            from opentelemetry.instrumentation.redis import RedisInstrumentor

            BotocoreInstrumentor().uninstrument()  # type: ignore[no-untyped-call]
            RedisInstrumentor().uninstrument()
            self.provider.shutdown()
            _provider = None


def _process_provider() -> Any:
    """The TracerProvider shared by this process's apps; botocore and Redis instrumented
    (they patch the client classes, so once per process). Called under ``_lock``."""
    global _provider, _get_current_span
    if _provider is not None:
        return _provider
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.botocore import BotocoreInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import get_current_span

    from authsvc.openapi import package_version

    resource = Resource.create(
        {SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME") or "authsvc"}
        | {"service.version": package_version()}
    )
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    BotocoreInstrumentor().instrument(tracer_provider=provider)  # type: ignore[no-untyped-call]
    RedisInstrumentor().instrument(tracer_provider=provider)
    _get_current_span = get_current_span
    _provider = provider
    return provider


def _trace_engine(engine: Any, provider: Any) -> None:
    from opentelemetry.instrumentation.dependencies import get_dependency_conflicts
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
    from opentelemetry.instrumentation.sqlalchemy.version import __version__
    from opentelemetry.metrics import NoOpMeterProvider

    conflict = get_dependency_conflicts(SQLAlchemyInstrumentor().instrumentation_dependencies())
    if conflict is not None:
        log.info(
            "opentelemetry-instrumentation-sqlalchemy %s: %s; its EngineTracer is attached"
            " to authsvc's engine directly",
            __version__,
            conflict,
        )
    tracer = provider.get_tracer("opentelemetry.instrumentation.sqlalchemy", __version__)
    usage = (
        NoOpMeterProvider()
        .get_meter("authsvc")
        .create_up_down_counter("db.client.connections.usage", unit="connections")
    )
    EngineTracer(tracer, engine, usage)  # type: ignore[no-untyped-call]


def instrument(app: Any, engine: Any) -> Traced | None:
    """Trace ``app`` (FastAPI), its database ``engine``, botocore and Redis. None, with one
    error line, when the OpenTelemetry packages are not installed."""
    global _users
    try:
        # Every package the helpers below import: a partial install is the same one clear
        # line, not an ImportError out of the app's start-up.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: F401
            OTLPSpanExporter,
        )
        from opentelemetry.instrumentation.botocore import BotocoreInstrumentor  # noqa: F401
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor  # noqa: F401
        from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer  # noqa: F401
        from opentelemetry.sdk.trace import TracerProvider  # noqa: F401
    except ImportError as exc:
        log.error(
            "%s is set but OpenTelemetry is not installed (%s): tracing off;"
            " pip install 'authsvc[otel]'",
            ENDPOINT_ENV,
            exc.name,
        )
        return None
    with _lock:
        provider = _process_provider()
        _users += 1
    traced = Traced(provider)
    try:
        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=provider,
            excluded_urls=os.environ.get(
                "OTEL_PYTHON_FASTAPI_EXCLUDED_URLS", DEFAULT_EXCLUDED_URLS
            ),
        )
        _trace_engine(engine, provider)
    except Exception:
        traced.shutdown()  # this app's share of the process-wide instrumentation goes too
        raise
    log.info("tracing on: OTLP to %s", os.environ.get(ENDPOINT_ENV, "").strip())
    return traced


def tag_request(request_id: str) -> str | None:
    """Put the request id on the current (server) span; return the trace id (32 hex
    digits), or None when this request is not traced (excluded, or not sampled)."""
    if _get_current_span is None:
        return None
    span = _get_current_span()
    context = span.get_span_context()
    if not context.is_valid:
        return None
    span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)
    return f"{context.trace_id:032x}"
