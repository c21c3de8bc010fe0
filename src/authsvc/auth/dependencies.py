"""The auth domain's dependency aliases (its endpoints, and profile's, take its service)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.auth.service import AuthService
from authsvc.dependencies import StateDep


async def get_auth_service(state: StateDep) -> AuthService:
    return state.auth


AuthServiceDep = Annotated[AuthService, Depends(get_auth_service)]
