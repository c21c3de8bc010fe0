"""The audit log as a dependency: every domain's endpoints record through it."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.audit.service import AuditLog
from authsvc.dependencies import StateDep


async def get_audit(state: StateDep) -> AuditLog:
    return state.audit


AuditDep = Annotated[AuditLog, Depends(get_audit)]
