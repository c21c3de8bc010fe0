from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Literal

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from authsvc import errors, metrics, problems
from authsvc.dependencies import StateDep
from authsvc.migrate import SchemaBehindError, check_schema
from authsvc.problems import PROBLEM_MEDIA_TYPE, Problem, problem_example, problem_response
from authsvc.state import AppState

log = logging.getLogger("authsvc.metrics")
router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: Literal["ok"] = "ok"


class Check(BaseModel):
    name: str
    status: Literal["ok", "fail"]
    required: bool
    detail: str | None = None


class Readiness(BaseModel):
    status: Literal["ok", "fail"]
    checks: list[Check]


HEALTHY_BODY = Health().model_dump_json().encode()


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Response:
    # Pre-encoded: no model to validate and serialize on every probe.
    return Response(HEALTHY_BODY, media_type="application/json")


class ReadinessCache:
    """Each dependency's last readiness answer, re-probed at most once per ``ttl`` seconds.

    /readyz is public and unlimited: without this, every call would spend a DescribeUserPool
    from the account's Cognito quota (and a flood would starve /v1/me fleet-wide). While one
    request re-probes a dependency, the others answer its previous result instead of waiting
    (only the very first probe is waited for).
    """

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._results: dict[str, tuple[float, Check]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def check(self, name: str, probe: Callable[[], object], *, required: bool = True) -> Check:
        cached = self._results.get(name)
        if cached is not None and self._clock() - cached[0] < self.ttl:
            return cached[1]
        with self._guard:
            lock = self._locks.setdefault(name, threading.Lock())
        if not lock.acquire(blocking=cached is None):
            return cached[1] if cached is not None else _check(name, probe, required=required)
        try:
            cached = self._results.get(name)  # another thread may have just probed
            if cached is not None and self._clock() - cached[0] < self.ttl:
                return cached[1]
            result = _check(name, probe, required=required)
            self._results[name] = (self._clock(), result)
            return result
        finally:
            lock.release()


def readiness_cache(state: AppState) -> ReadinessCache:
    """The app's cache, made on first use (kept on the state: one per app, per process)."""
    cache: ReadinessCache | None = getattr(state, "_readiness_cache", None)
    if cache is None:
        cache = ReadinessCache(state.settings.readiness_cache_seconds)
        setattr(state, "_readiness_cache", cache)  # noqa: B010 - not a declared field
    return cache


def _check(name: str, probe: Callable[[], object], *, required: bool = True) -> Check:
    try:
        probe()
    except SchemaBehindError as exc:
        # Reachable but not migrated: say so, with both revisions (issue 16).
        return Check(name=name, status="fail", required=required, detail=str(exc))
    except Exception as exc:  # noqa: BLE001 - any failure is "not ready", named by type
        return Check(name=name, status="fail", required=required, detail=type(exc).__name__)
    return Check(name=name, status="ok", required=required)


def _database(state: AppState) -> None:
    with state.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
        # Part of the database check (one more read of alembic_version), so it shares
        # whatever caching the database check gets.
        check_schema(conn)


def _redis(url: str) -> None:
    import redis  # only configurations with AUTHSVC_REDIS_URL probe it (issue 12: start-up)

    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _checks(state: AppState) -> list[Check]:
    """One entry per dependency, each from the readiness cache (see ReadinessCache)."""
    cache = readiness_cache(state)
    checks = [
        cache.check("database", lambda: _database(state)),
        cache.check("cognito", state.gateway.readiness_probe),
        # Until the ledger is read once, tokens issued before start-up are refused. An
        # in-memory flag: read fresh every time, so readiness follows the first sync at once.
        _check("revocation_ledger", state.revocations.check_synced),
    ]
    if state.settings.redis_url:
        url = state.settings.redis_url
        checks.append(cache.check("redis", lambda: _redis(url)))
    return checks


class ReadinessProblem(Problem):
    """503 `upstream_unavailable`, with one entry per dependency."""

    checks: list[Check]


_NOT_READY_EXAMPLE = {
    **problem_example("upstream_unavailable", 503),
    "detail": "Not ready: database failed.",
    "checks": [
        {"name": "database", "status": "fail", "required": True, "detail": "OperationalError"},
        {"name": "cognito", "status": "ok", "required": True, "detail": None},
    ],
}


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Every dependency is reachable",
    description=(
        "One entry per dependency. Each is re-probed at most once per"
        " `AUTHSVC_READINESS_CACHE_SECONDS` (default 5 s) per instance, so probes never spend"
        " the Cognito quota that users need."
    ),
    responses={
        503: {
            "model": ReadinessProblem,
            "description": "Problem: `upstream_unavailable`",
            "content": {
                PROBLEM_MEDIA_TYPE: {
                    "schema": {"$ref": "#/components/schemas/ReadinessProblem"},
                    "examples": {
                        "upstream_unavailable": {
                            "summary": "upstream_unavailable",
                            "value": _NOT_READY_EXAMPLE,
                        }
                    },
                }
            },
        }
    },
)
async def readyz(request: Request, state: StateDep) -> JSONResponse:
    checks = await run_in_threadpool(_checks, state)
    failed = [c.name for c in checks if c.required and c.status != "ok"]
    if not failed:
        return JSONResponse(Readiness(status="ok", checks=checks).model_dump())
    # Not ready is an error like any other: a problem document (its `checks` say which).
    return problem_response(
        request,
        status=503,
        code="upstream_unavailable",
        title=errors.UpstreamUnavailableError.title,
        detail=f"Not ready: {', '.join(failed)} failed.",
        headers={"Retry-After": "5"},
        extra={"checks": [c.model_dump() for c in checks]},
    )


def _metrics_allowed(state: AppState, authorization: str | None) -> None:
    """Serve mode: only with ``Authorization: Bearer $AUTHSVC_METRICS_TOKEN``; no token set
    means no /metrics at all (404). Dev mode keeps it open."""
    if state.settings.dev_mode:
        return
    expected = state.settings.metrics_token
    if expected is None:
        raise errors.NotFoundError("Not found.")
    scheme, _, presented = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise errors.NotAuthenticatedError("/metrics needs the metrics bearer token.")
    if not hmac.compare_digest(presented.strip().encode(), expected.get_secret_value().encode()):
        raise errors.InvalidTokenError("The metrics token is not valid.")


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=PlainTextResponse,
    description=(
        "Outside dev mode: only with `Authorization: Bearer $AUTHSVC_METRICS_TOKEN`, and 404"
        " while that setting is unset. Cognito outcomes are counted by class (`ok`,"
        " `client_error`, `throttled`, `unavailable`), never by Cognito error code. With"
        " several workers, any worker's answer sums every worker's numbers."
    ),
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problems.responses(
            errors.NotAuthenticatedError, errors.InvalidTokenError, errors.NotFoundError
        ),
    },
)
async def metrics_endpoint(
    state: StateDep, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
) -> Response:
    _metrics_allowed(state, authorization)
    body, content_type = await run_in_threadpool(metrics.render, OutboxBacklog(state))
    return Response(body, media_type=content_type)


def state_sample(state: AppState) -> dict[str, float]:
    """This process's state gauges (metrics.STATE_GAUGES), read at each metrics flush."""
    budget = state.gateway.budget
    return {
        "authsvc_audit_events_written": state.audit.written,
        "authsvc_audit_events_dropped": state.audit.dropped,
        "authsvc_audit_events_pending": state.audit.pending(),
        "authsvc_audit_write_failures": state.audit.write_failures,
        "authsvc_rate_limit_storage_errors": state.limits.storage_errors,
        "authsvc_cognito_budget_refused": budget.refused if budget is not None else 0,
        "authsvc_revocation_sync_healthy": 1 if state.revocations.healthy else 0,
        "authsvc_revocations_unsaved": state.revocations.unsaved_count(),
    }


class OutboxBacklog(Collector):
    """The outbox backlog, read at scrape time (cached a few seconds by the worker): a
    property of the shared database, so it is not summed across workers."""

    def __init__(self, state: AppState) -> None:
        self.state = state

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            waiting, oldest = self.state.outbox_worker.backlog()
        except SQLAlchemyError as exc:
            log.warning("outbox backlog unreadable: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "authsvc_outbox_backlog", "Emails queued and not yet delivered.", value=waiting
        )
        yield GaugeMetricFamily(
            "authsvc_outbox_oldest_seconds",
            "Age of the oldest email waiting to be delivered (0 when none).",
            value=oldest,
        )
