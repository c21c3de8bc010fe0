"""The federation domain's dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.dependencies import StateDep
from authsvc.federation.errors import FederationNotConfiguredError
from authsvc.federation.service import FederationService


async def get_federation(state: StateDep) -> FederationService:
    if state.federation is None:
        raise FederationNotConfiguredError()
    return state.federation


FederationDep = Annotated[FederationService, Depends(get_federation)]
