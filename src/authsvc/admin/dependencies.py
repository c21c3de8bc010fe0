"""The admin domain's dependency aliases (the admin requirement itself is cross-cutting:
``authsvc.dependencies.require_admin``, set on each admin router)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.admin.service import AdminService
from authsvc.dependencies import StateDep


async def get_admin_service(state: StateDep) -> AdminService:
    return state.admin


AdminServiceDep = Annotated[AdminService, Depends(get_admin_service)]
