from __future__ import annotations

from typing import Literal

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy import text

from authsvc.dependencies import StateDep
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


def _checks(state: AppState) -> list[Check]:
    checks = []
    try:
        with state.db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        checks.append(Check(name="database", status="ok", required=True))
    except Exception as exc:  # noqa: BLE001
        checks.append(
            Check(name="database", status="fail", required=True, detail=type(exc).__name__)
        )
    try:
        state.gateway.describe_user_pool()
        checks.append(Check(name="cognito", status="ok", required=True))
    except Exception as exc:  # noqa: BLE001
        checks.append(
            Check(name="cognito", status="fail", required=True, detail=type(exc).__name__)
        )
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
