from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status

from authsvc import cursors, errors
from authsvc.audit.dependencies import AuditDep
from authsvc.auth import transport
from authsvc.auth.dependencies import PublicCallDep
from authsvc.auth.schemas import TokenResult
from authsvc.auth.service import token_identity
from authsvc.dependencies import (
    CurrentUser,
    LimitsDep,
    RequestContextDep,
    SessionDep,
    SettingsDep,
    require_admin,
)
from authsvc.invitations import schemas
from authsvc.invitations.dependencies import InvitationServiceDep
from authsvc.problems import responses
from authsvc.schemas import Email

# The admin routes carry the admin requirement on their router; lookup and accept are for
# the invitee (their token is the credential). ``router`` holds both, admin routes first.
admin_router = APIRouter(
    prefix="/v1/invitations", tags=["invitations"], dependencies=[Depends(require_admin)]
)
public_router = APIRouter(prefix="/v1/invitations", tags=["invitations"])
# Paths take `{invitation_id:uuid}`: only a UUID selects the admin routes below, so e.g.
# `GET /v1/invitations/lookup` is 405 (a POST-only path), not an admin route asking for a token.

_ADMIN = errors.ADMIN
_UPSTREAM = errors.UPSTREAM
_LIMITED = (errors.RateLimitedError,)


@admin_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=schemas.Invitation,
    summary="Invite someone (emails a single-use link)",
    responses=responses(
        *_ADMIN, errors.ConflictError, *errors.ATTRIBUTES, errors.UnknownGroupError, *_UPSTREAM
    ),
)
def create_invitation(
    body: schemas.InvitationCreate,
    admin: CurrentUser,
    session: SessionDep,
    invitations: InvitationServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> schemas.Invitation:
    with audit.track("invitation_created", ctx, actor=admin.sub, target_email=body.email) as ev:
        ev.detail["groups"] = list(body.groups)
        invitation = invitations.create(session, admin, body)
        ev.detail["invitation_id"] = str(invitation.id)
        return invitation


@admin_router.get(
    "",
    response_model=schemas.InvitationPage,
    summary="List invitations, newest first",
    responses=responses(*_ADMIN, errors.InvalidCursorError),
)
def list_invitations(
    session: SessionDep,
    invitations: InvitationServiceDep,
    status_: Annotated[schemas.Status | None, Query(alias="status")] = None,
    email: Annotated[Email | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=512, pattern=cursors.CURSOR_PATTERN)] = None,
) -> schemas.InvitationPage:
    return invitations.list(session, status=status_, email=email, limit=limit, cursor=cursor)


@admin_router.get(
    "/{invitation_id:uuid}",
    response_model=schemas.Invitation,
    summary="One invitation",
    responses=responses(*_ADMIN, errors.NotFoundError),
)
def get_invitation(
    invitation_id: uuid.UUID,
    session: SessionDep,
    invitations: InvitationServiceDep,
) -> schemas.Invitation:
    return invitations.get(session, invitation_id)


@admin_router.post(
    "/{invitation_id:uuid}/resend",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=schemas.Invitation,
    summary="Email a new link (the old one stops working); renews an expired invitation",
    responses=responses(*_ADMIN, errors.NotFoundError, errors.ConflictError),
)
def resend_invitation(
    invitation_id: uuid.UUID,
    admin: CurrentUser,
    session: SessionDep,
    invitations: InvitationServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> schemas.Invitation:
    with audit.track("invitation_resent", ctx, actor=admin.sub) as ev:
        ev.detail["invitation_id"] = str(invitation_id)
        invitation = invitations.resend(session, invitation_id)
        ev.target_email = invitation.email
        return invitation


@admin_router.delete(
    "/{invitation_id:uuid}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke an invitation",
    responses=responses(*_ADMIN, errors.NotFoundError, errors.ConflictError),
)
def revoke_invitation(
    invitation_id: uuid.UUID,
    admin: CurrentUser,
    session: SessionDep,
    invitations: InvitationServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("invitation_revoked", ctx, actor=admin.sub) as ev:
        ev.detail["invitation_id"] = str(invitation_id)
        # The invitee, as for created/resent: filtering the log on an email finds all three.
        ev.target_email = invitations.get(session, invitation_id).email
        invitations.revoke(session, invitation_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@public_router.post(
    "/lookup",
    response_model=schemas.InvitationLookup,
    summary="Who an invitation token is for (to fill the registration form)",
    responses=responses(errors.InvalidInvitationError, *_LIMITED),
)
def lookup_invitation(body: schemas.TokenRequest, call: PublicCallDep) -> schemas.InvitationLookup:
    # One dependency, and the session opened here (a read: nothing to commit), not by a
    # generator dependency that FastAPI runs in a thread of its own (issue 12).
    call.limits.hit("invitation_ip", call.ctx.ip)
    with call.state.db.sessions() as session:
        return call.state.invitations.lookup(session, body.token)


@public_router.post(
    "/accept",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenResult,
    summary="Accept an invitation: create the account with the chosen password, sign in",
    responses=responses(
        errors.InvalidInvitationError,
        errors.InvalidPasswordError,
        errors.ConflictError,
        *errors.ATTRIBUTES,
        *_UPSTREAM,
        *_LIMITED,
    ),
)
def accept_invitation(
    body: schemas.AcceptRequest,
    request: Request,
    response: Response,
    invitations: InvitationServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
    limits: LimitsDep,
    settings: SettingsDep,
) -> Any:
    with audit.track("invitation_accepted", ctx) as ev:
        limits.hit("invitation_ip", ctx.ip)
        result = invitations.accept(body)
        ev.actor, username, email = token_identity(result)
        ev.subject(username, email)
        return transport.deliver(request, response, result, settings)


router = APIRouter()
router.include_router(admin_router)
router.include_router(public_router)
