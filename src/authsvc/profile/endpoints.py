from __future__ import annotations

from fastapi import APIRouter, Response, status

from authsvc import errors
from authsvc.audit.dependencies import AuditDep
from authsvc.auth.dependencies import AuthServiceDep
from authsvc.dependencies import CurrentUser, RequestContextDep
from authsvc.problems import responses
from authsvc.profile.dependencies import ProfileServiceDep
from authsvc.profile.schemas import ChangePasswordRequest, Me, ProfileUpdate

router = APIRouter(prefix="/v1/me", tags=["profile"])

_AUTH = errors.AUTH
_UPSTREAM = errors.LIMITED_UPSTREAM


@router.get(
    "",
    response_model=Me,
    summary="The signed-in user's profile",
    responses=responses(*_AUTH, *_UPSTREAM),
)
def get_me(claims: CurrentUser, profiles: ProfileServiceDep) -> Me:
    return profiles.get(claims)


@router.patch(
    "",
    response_model=Me,
    summary="Update the signed-in user's profile",
    description="Only attributes the pool marks mutable and the app client may write.",
    responses=responses(*_AUTH, *errors.ATTRIBUTES, *_UPSTREAM),
)
def update_me(
    body: ProfileUpdate,
    claims: CurrentUser,
    profiles: ProfileServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Me:
    with audit.track("profile_updated", ctx, actor=claims.sub, target=claims.username) as ev:
        ev.detail["fields"] = sorted(
            [f for f in ("given_name", "family_name") if f in body.model_fields_set]
            + [f"attributes.{name}" for name in body.attributes]
        )
        me = profiles.update(claims, body)
        ev.subject(None, me.email)
        return me


@router.post(
    "/password",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Change password",
    description="Signs the user out everywhere: sign in again with the new password.",
    responses=responses(
        *_AUTH, errors.InvalidCurrentPasswordError, errors.InvalidPasswordError, *_UPSTREAM
    ),
)
def change_password(
    body: ChangePasswordRequest,
    claims: CurrentUser,
    auth: AuthServiceDep,
    audit: AuditDep,
    ctx: RequestContextDep,
) -> Response:
    with audit.track("password_changed", ctx, actor=claims.sub, target=claims.username):
        auth.change_password(claims, body.current_password, body.new_password)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
