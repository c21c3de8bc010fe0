"""The profile domain's dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.dependencies import StateDep
from authsvc.profile.service import ProfileService


async def get_profile_service(state: StateDep) -> ProfileService:
    return state.profile


ProfileServiceDep = Annotated[ProfileService, Depends(get_profile_service)]
