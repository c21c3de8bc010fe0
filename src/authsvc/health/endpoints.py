from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import redis
from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel
from sqlalchemy import text

from authsvc import metrics
from authsvc.dependencies import StateDep
from authsvc.migrate import SchemaBehindError, check_schema
from authsvc.state import AppState

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


@router.get("/healthz", response_model=Health, summary="The process is alive")
async def healthz() -> Health:
    return Health()


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
    client = redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1)
    try:
        client.ping()
    finally:
        client.close()


def _checks(state: AppState) -> list[Check]:
    checks = [
        _check("database", lambda: _database(state)),
        _check("cognito", state.gateway.describe_user_pool),
    ]
    if state.settings.redis_url:
        url = state.settings.redis_url
        checks.append(_check("redis", lambda: _redis(url)))
    return checks


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Every dependency is reachable",
    responses={503: {"model": Readiness, "description": "A required dependency failed"}},
)
async def readyz(state: StateDep) -> JSONResponse:
    checks = await run_in_threadpool(_checks, state)
    ok = all(c.status == "ok" for c in checks if c.required)
    body = Readiness(status="ok" if ok else "fail", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if ok else 503)


@router.get(
    "/metrics",
    summary="Prometheus metrics (text format)",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics_endpoint(state: StateDep) -> PlainTextResponse:
    budget = state.gateway.budget
    gauges: dict[str, tuple[str, float]] = {
        "authsvc_audit_events_written": ("Audit events written.", state.audit.written),
        "authsvc_audit_events_dropped": (
            "Audit events dropped (buffer full).",
            state.audit.dropped,
        ),
        "authsvc_audit_events_pending": (
            "Audit events waiting to be written.",
            state.audit.pending(),
        ),
        "authsvc_audit_write_failures": ("Failed audit writes.", state.audit.write_failures),
        "authsvc_emails_sent": ("Emails delivered by this instance.", state.outbox_worker.sent),
        "authsvc_email_failed_attempts": (
            "Failed email deliveries.",
            state.outbox_worker.failed_attempts,
        ),
        "authsvc_rate_limit_storage_errors": (
            "Rate-limit storage failures (limits failed open).",
            state.limits.storage_errors,
        ),
        "authsvc_cognito_budget_refused": (
            "Cognito calls not sent: budget spent.",
            budget.refused if budget is not None else 0,
        ),
        "authsvc_revocation_sync_healthy": (
            "1 when the revocation ledger was read on the last poll.",
            1 if state.revocations.healthy else 0,
        ),
        "authsvc_revocations_unsaved": (
            "Revocations held in memory while the database is down.",
            state.revocations.unsaved_count(),
        ),
    }
    return PlainTextResponse(metrics.render(gauges), media_type="text/plain; version=0.0.4")
