"""The MFA domain's dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.dependencies import StateDep
from authsvc.mfa.service import MfaService


async def get_mfa_service(state: StateDep) -> MfaService:
    return state.mfa


MfaServiceDep = Annotated[MfaService, Depends(get_mfa_service)]
