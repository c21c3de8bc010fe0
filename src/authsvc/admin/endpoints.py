from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Response, status

from authsvc import cursors, errors
from authsvc.admin import schemas
from authsvc.admin.dependencies import AdminServiceDep
from authsvc.audit.dependencies import AuditDep
from authsvc.dependencies import CurrentUser, RequestContextDep, require_admin
from authsvc.problems import responses
from authsvc.schemas import GroupNameSegment

router = APIRouter(prefix="/v1/admin/users", tags=["admin"], dependencies=[Depends(require_admin)])

_ADMIN = errors.ADMIN
_UPSTREAM = errors.UPSTREAM


UsernamePath = Annotated[schemas.Username, Path(description="Cognito's user id (`username`)")]
GroupPath = Annotated[GroupNameSegment, Path()]


def _done() -> Response:
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "",
    response_model=schemas.AdminUserPage,
    summary="List users",
    description=(
        "`email_prefix` matches the lower-cased email; `status` is a Cognito user status or"
        " `disabled`. With both, Cognito filters by email and authsvc by status, so a page"
        " may hold fewer than `limit` users while `next_cursor` is set."
    ),
    responses=responses(*_ADMIN, *_UPSTREAM, errors.InvalidCursorError),
)
def list_users(
    admin_service: AdminServiceDep,
    email_prefix: Annotated[schemas.EmailPrefix | None, Query()] = None,
    status_: Annotated[schemas.UserStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=4096, pattern=cursors.CURSOR_PATTERN)] = None,
) -> schemas.AdminUserPage:
    return admin_service.list_users(
        email_prefix=email_prefix, status=status_, limit=limit, cursor=cursor
    )


@router.get(
    "/{username}",
    response_model=schemas.AdminUser,
    summary="One user, with status, groups and MFA",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def get_user(username: UsernamePath, admin_service: AdminServiceDep) -> schemas.AdminUser:
    return admin_service.get_user(username)


@router.patch(
    "/{username}",
    response_model=schemas.AdminUser,
    summary="Update a user's attributes (admins may set email_verified)",
    responses=responses(*_ADMIN, errors.NotFoundError, *errors.ATTRIBUTES, *_UPSTREAM),
)
def update_user(
    username: UsernamePath,
    body: schemas.AdminUserUpdate,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> schemas.AdminUser:
    with audit.track("user_updated", ctx, actor=admin.sub, target=username) as ev:
        ev.detail["fields"] = sorted(
            [
                f
                for f in ("given_name", "family_name", "email_verified")
                if f in body.model_fields_set
            ]
            + [f"attributes.{name}" for name in body.attributes]
        )
        user = admin_service.update_user(username, body)
        ev.subject(user.username, user.email)
        return user


@router.delete(
    "/{username}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a user (ends their sessions)",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def delete_user(
    username: UsernamePath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_deleted", ctx, actor=admin.sub, target=username):
        admin_service.delete_user(username)
    return _done()


@router.post(
    "/{username}/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Set a user's password (ends their sessions)",
    description="`permanent: false` makes it temporary: the user must choose a new one.",
    responses=responses(*_ADMIN, errors.NotFoundError, errors.InvalidPasswordError, *_UPSTREAM),
)
def set_password(
    username: UsernamePath,
    body: schemas.SetPasswordRequest,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_password_set", ctx, actor=admin.sub, target=username) as ev:
        ev.detail["permanent"] = body.permanent
        admin_service.set_password(username, body.password, permanent=body.permanent)
    return _done()


@router.post(
    "/{username}/disable",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disable a user (ends their sessions)",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def disable_user(
    username: UsernamePath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_disabled", ctx, actor=admin.sub, target=username):
        admin_service.disable(username)
    return _done()


@router.post(
    "/{username}/enable",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Enable a user",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def enable_user(
    username: UsernamePath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_enabled", ctx, actor=admin.sub, target=username):
        admin_service.enable(username)
    return _done()


@router.post(
    "/{username}/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Sign a user out everywhere",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def sign_out_user(
    username: UsernamePath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_signed_out", ctx, actor=admin.sub, target=username):
        admin_service.sign_out(username)
    return _done()


@router.put(
    "/{username}/groups/{group}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Add a user to a group (takes effect at their next sign-in or refresh)",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def add_to_group(
    username: UsernamePath,
    group: GroupPath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_added_to_group", ctx, actor=admin.sub, target=username) as ev:
        ev.detail["group"] = group
        admin_service.add_to_group(username, group)
    return _done()


@router.delete(
    "/{username}/groups/{group}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove a user from a group (ends their sessions: tokens carry groups)",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def remove_from_group(
    username: UsernamePath,
    group: GroupPath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_removed_from_group", ctx, actor=admin.sub, target=username) as ev:
        ev.detail["group"] = group
        admin_service.remove_from_group(username, group)
    return _done()


@router.delete(
    "/{username}/mfa",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Turn a user's TOTP MFA off",
    responses=responses(*_ADMIN, errors.NotFoundError, *_UPSTREAM),
)
def disable_mfa(
    username: UsernamePath,
    admin: CurrentUser,
    admin_service: AdminServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("user_mfa_disabled", ctx, actor=admin.sub, target=username):
        admin_service.disable_mfa(username)
    return _done()
