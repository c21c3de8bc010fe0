"""The invitations domain's dependency aliases."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from authsvc.dependencies import StateDep
from authsvc.invitations.service import InvitationService


async def get_invitation_service(state: StateDep) -> InvitationService:
    return state.invitations


InvitationServiceDep = Annotated[InvitationService, Depends(get_invitation_service)]
