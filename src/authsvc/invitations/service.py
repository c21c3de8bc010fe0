"""Invitations (DESIGN §4): the ledger, the emailed link, and the acceptance saga.

Acceptance runs as a saga of short transactions, one per step, so that its progress
survives a crash — the one place where a service commits itself instead of leaving it to
the request's session:

1. claim the row (a lease: ``claim_id``/``claimed_until``) — concurrent accepts get 409;
2. create the Cognito user (``admin_create_user``, SUPPRESS, random temporary password),
   or reuse the one an earlier attempt created; record its ``sub`` on the row;
3. add the invitation's groups (before signing in, so the tokens carry them);
4. sign in with the temporary password and answer ``NEW_PASSWORD_REQUIRED``;
5. mark the row accepted and return the tokens.

An error at any step releases the lease, so retrying the same token repairs everything;
a crash leaves the lease to lapse, after which a retry or ``authsvc reconcile`` repairs.
Invariants: one invitation → at most one Cognito user; ``accepted`` ⇒ the user exists; a
token that was used always has a user.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from authsvc import cursors, errors
from authsvc.auth.schemas import TokenResult
from authsvc.auth.service import AuthService
from authsvc.cognito.errors import AccountExistsError, UnknownUserError
from authsvc.cognito.gateway import CognitoGateway, challenge_username, from_attribute_list
from authsvc.cognito.gateway import user_sub as sub_of_user
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import AccessClaims
from authsvc.config import Settings
from authsvc.cursors import aware
from authsvc.db import Database
from authsvc.email.outbox import Outbox
from authsvc.invitations import schemas
from authsvc.invitations.models import ACCEPTED, EXPIRED, PENDING, REVOKED, Invitation
from authsvc.invitations.repository import InvitationRepository

log = logging.getLogger("authsvc.invitations")

# How far a Cognito user's creation date may sit before the claim that made it (clocks).
CLOCK_SKEW = timedelta(seconds=5)

SAGA_STEPS = (
    "claimed",
    "user_created",
    "user_recorded",
    "groups_added",
    "signed_in",
    "password_set",
)


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def temporary_password() -> str:
    # Random, never stored, logged or returned; meets any sane policy by construction.
    return secrets.token_urlsafe(24) + "Aa1!"


def status_of(invitation: Invitation, now: datetime) -> str:
    if invitation.status == PENDING and aware(invitation.expires_at) <= now:
        return EXPIRED
    return invitation.status


def to_schema(invitation: Invitation, now: datetime) -> schemas.Invitation:
    return schemas.Invitation(
        id=invitation.id,
        email=invitation.email,
        given_name=invitation.given_name,
        family_name=invitation.family_name,
        attributes=dict(invitation.attributes or {}),
        groups=list(invitation.groups or []),
        status=status_of(invitation, now),  # type: ignore[arg-type]
        invited_by=invitation.invited_by,
        created_at=aware(invitation.created_at),
        expires_at=aware(invitation.expires_at),
        accepted_at=aware(invitation.accepted_at) if invitation.accepted_at else None,
        revoked_at=aware(invitation.revoked_at) if invitation.revoked_at else None,
        user_sub=invitation.user_sub,
    )


class InvitationService:
    def __init__(
        self,
        settings: Settings,
        db: Database,
        gateway: CognitoGateway,
        pool: PoolInfoCache,
        outbox: Outbox,
        auth: AuthService,
    ) -> None:
        self.settings = settings
        self.db = db
        self.gateway = gateway
        self.pool = pool
        self.outbox = outbox
        self.auth = auth
        self.ttl = timedelta(hours=settings.invitation_ttl_hours)
        self.lease = timedelta(seconds=settings.invitation_claim_lease_seconds)
        # Tests replace this to crash the saga between steps.
        self.fault: Callable[[str], None] = lambda _step: None

    # -- admin --------------------------------------------------------------------------

    def create(
        self, session: Session, actor: AccessClaims, body: schemas.InvitationCreate
    ) -> schemas.Invitation:
        self._check_profile(body.given_name, body.family_name, body.attributes)
        self._check_groups(body.groups)
        try:
            existing = self.gateway.admin_get_user(body.email)
        except UnknownUserError:
            pass
        else:
            # An unconfirmed sign-up proves nothing about who holds the mailbox (anyone can
            # register any address): the invitation takes it over at acceptance.
            if existing.get("UserStatus") != "UNCONFIRMED":
                raise errors.ConflictError("An account with this email already exists.")
        now = utcnow()
        repo = InvitationRepository(session)
        repo.expire_pending(body.email, now)
        if repo.pending_for(body.email) is not None:
            raise errors.ConflictError("A pending invitation for this email already exists.")
        token = new_token()
        invitation = Invitation(
            id=uuid.uuid4(),
            email=body.email,
            given_name=body.given_name,
            family_name=body.family_name,
            attributes=dict(body.attributes),
            groups=list(dict.fromkeys(body.groups)),
            status=PENDING,
            token_hash=hash_token(token),
            invited_by=actor.sub,
            created_at=now,
            updated_at=now,
            expires_at=now + self.ttl,
        )
        try:
            with session.begin_nested():
                repo.add(invitation)
        except IntegrityError:
            raise errors.ConflictError(
                "A pending invitation for this email already exists."
            ) from None
        self._send(session, invitation, token)
        return to_schema(invitation, now)

    def list(
        self,
        session: Session,
        *,
        status: str | None,
        email: str | None,
        limit: int,
        cursor: str | None,
    ) -> schemas.InvitationPage:
        now = utcnow()
        after = cursors.decode(cursor) if cursor else None
        rows = InvitationRepository(session).list(
            now=now, status=status, email=email, after=after, limit=limit + 1
        )
        items = [to_schema(row, now) for row in rows[:limit]]
        last = rows[limit - 1] if len(rows) > limit else None
        next_cursor = cursors.encode(last.created_at, last.id) if last is not None else None
        return schemas.InvitationPage(items=items, next_cursor=next_cursor)

    def get(self, session: Session, id: uuid.UUID) -> schemas.Invitation:
        return to_schema(self._find(session, id), utcnow())

    def resend(self, session: Session, id: uuid.UUID) -> schemas.Invitation:
        invitation = self._find(session, id, lock=True)
        now = utcnow()
        if invitation.status in (ACCEPTED, REVOKED):
            raise errors.ConflictError(f"The invitation is {invitation.status}.")
        if invitation.claimed_until is not None and aware(invitation.claimed_until) > now:
            raise errors.ConflictError("The invitation is being accepted.")
        token = new_token()
        invitation.token_hash = hash_token(token)
        invitation.status = PENDING
        invitation.expires_at = now + self.ttl
        invitation.updated_at = now
        try:
            with session.begin_nested():
                session.flush()
        except IntegrityError:
            raise errors.ConflictError(
                "Another pending invitation exists for this email."
            ) from None
        self._send(session, invitation, token)
        return to_schema(invitation, now)

    def revoke(self, session: Session, id: uuid.UUID) -> None:
        invitation = self._find(session, id, lock=True)
        now = utcnow()
        if invitation.status == REVOKED:
            return
        if invitation.status == ACCEPTED:
            raise errors.ConflictError("The invitation was accepted: disable the user instead.")
        if invitation.claimed_until is not None and aware(invitation.claimed_until) > now:
            raise errors.ConflictError("The invitation is being accepted; retry shortly.")
        if invitation.user_sub is not None:
            # An earlier acceptance got as far as a working account (its password is set):
            # revoking the ledger row would leave that account unlinked but alive.
            existing = self._user_or_none(invitation.email)
            if (
                existing is not None
                and sub_of_user(existing) == invitation.user_sub
                and existing.get("UserStatus") != "FORCE_CHANGE_PASSWORD"
            ):
                raise errors.ConflictError(
                    "The invitee's account already exists: disable or delete the user instead."
                )
        if not InvitationRepository(session).revoke(invitation.id, now):
            # Changed since it was read (an accept claimed it, or it ended): say what it is.
            session.refresh(invitation)
            if invitation.status == REVOKED:
                return
            if invitation.status == ACCEPTED:
                raise errors.ConflictError("The invitation was accepted: disable the user instead.")
            raise errors.ConflictError("The invitation is being accepted; retry shortly.")
        session.expire(invitation)

    # -- public -------------------------------------------------------------------------

    def lookup(self, session: Session, token: str) -> schemas.InvitationLookup:
        invitation = self._live(session, token, utcnow())
        return schemas.InvitationLookup(
            email=invitation.email,
            given_name=invitation.given_name,
            family_name=invitation.family_name,
            expires_at=aware(invitation.expires_at),
        )

    def accept(self, body: schemas.AcceptRequest) -> TokenResult:
        self.pool.get().policy.check(body.password)
        now = utcnow()
        claim_id = uuid.uuid4()
        with self.db.sessions() as session, session.begin():
            invitation = self._live(session, body.token, now)
            profile: dict[str, str | None] = {
                "given_name": body.given_name or invitation.given_name,
                "family_name": body.family_name or invitation.family_name,
                **(invitation.attributes or {}),
                **body.attributes,
            }
            attributes = self._check_profile_values(profile)
            # What the pool requires and neither the invitation nor this body gives (the
            # template's pool: family_name): the invitee supplies it here.
            self.pool.get().check_required(attributes, supplied=frozenset({"email"}))
            if not InvitationRepository(session).claim(
                invitation.id, claim_id, now, now + self.lease, token_hash=hash_token(body.token)
            ):
                raise errors.ConflictError("The invitation is being accepted; retry shortly.")
            snapshot = _Snapshot(
                invitation.id, invitation.email, list(invitation.groups or []), invitation.user_sub
            )
        try:
            return self._run_saga(snapshot, claim_id, attributes, body.password)
        except BaseException:
            self._release(snapshot.id, claim_id)
            raise

    def _run_saga(
        self, inv: _Snapshot, claim_id: uuid.UUID, attributes: dict[str, str], password: str
    ) -> TokenResult:
        self.fault("claimed")
        temp = temporary_password()
        username, sub = self._ensure_user(inv, temp, attributes)
        self.fault("user_created")
        with self.db.sessions() as session, session.begin():
            repo = InvitationRepository(session)
            recorded = repo.record_user(inv.id, claim_id, sub, utcnow())
            if not recorded:
                # The lease lapsed and the row ended meanwhile (revoked, expired): leave the
                # user we made where the reconciler deletes it (committed, then refused).
                repo.attach_orphan(inv.id, sub, utcnow())
        if not recorded:
            raise errors.ConflictError("The invitation is being accepted; retry shortly.")
        self.fault("user_recorded")
        for group in inv.groups:
            self.gateway.admin_add_user_to_group(username, group)
        self.fault("groups_added")
        started = self.auth.revocations.started()
        response = self.gateway.sign_in(inv.email, temp)
        self.fault("signed_in")
        if response.get("ChallengeName") == "NEW_PASSWORD_REQUIRED":
            # Answered as the user's actual username (Cognito's USER_ID_FOR_SRP), not the
            # email: Cognito refuses an alias here, and SECRET_HASH is over that name.
            response = self.gateway.respond_to_challenge(
                "NEW_PASSWORD_REQUIRED",
                response["Session"],
                challenge_username(response, username),
                {"NEW_PASSWORD": password},
            )
        else:  # no challenge (unexpected): set the password directly, sign in with it
            self.gateway.admin_set_user_password(username, password, permanent=True)
            response = self.gateway.sign_in(inv.email, password)
        self.fault("password_set")
        with self.db.sessions() as session, session.begin():
            repo = InvitationRepository(session)
            if not repo.mark_accepted(inv.id, claim_id, sub, utcnow()):
                row = repo.get(inv.id)
                if row is None or row.status != ACCEPTED or row.user_sub != sub:
                    raise errors.ConflictError(
                        "The invitation changed while it was being accepted."
                    )
        log.info("invitation accepted", extra={"invitation_id": str(inv.id)})
        result = self.auth.tokens_from(response, started, email=inv.email)
        if not isinstance(result, TokenResult):
            raise errors.UpstreamError()
        return result

    def _ensure_user(
        self, inv: _Snapshot, temp: str, attributes: dict[str, str]
    ) -> tuple[str, str]:
        cognito_attributes = {"email_verified": "true", **attributes}
        try:
            user = self.gateway.admin_create_user(inv.email, temp, cognito_attributes)
            values = from_attribute_list(user.get("Attributes", []))
            username = user["Username"]
            sub = values.get("sub")
            if not sub:
                sub = sub_of_user(self.gateway.admin_get_user(username))
            return username, sub
        except AccountExistsError:
            pass
        existing = self.gateway.admin_get_user(inv.email)
        if existing.get("UserStatus") == "UNCONFIRMED":
            # An unconfirmed sign-up holds the address: the invitation (delivered to the
            # mailbox) takes it over; whoever registered it never proved they own it.
            self.gateway.admin_delete_user(existing["Username"])
            return self._ensure_user(inv, temp, attributes)
        sub = sub_of_user(existing)
        ours = inv.user_sub == sub or (
            inv.user_sub is None and existing.get("UserStatus") == "FORCE_CHANGE_PASSWORD"
        )
        if not ours:
            raise errors.ConflictError("An account with this email already exists.")
        # An earlier attempt made this user: start it over with a new temporary password.
        username = existing["Username"]
        # Immutable attributes were set when the earlier attempt created the user: Cognito
        # refuses to write them again.
        info = self.pool.get()
        self.gateway.admin_update_user_attributes(
            username, {k: v for k, v in cognito_attributes.items() if not info.is_immutable(k)}
        )
        self.gateway.admin_set_user_password(username, temp, permanent=False)
        return username, sub

    # -- repair -------------------------------------------------------------------------

    def reconcile(self) -> dict[str, int]:
        """Repair rows whose acceptance crashed (their lease lapsed), and half-made users of
        invitations that were revoked or expired. Safe to run anywhere, any time."""
        counts = {"accepted": 0, "released": 0, "users_deleted": 0}
        now = utcnow()
        with self.db.sessions() as session:
            stale = [
                (r.id, r.claim_id, r.email, r.user_sub, list(r.groups or []))
                for r in InvitationRepository(session).stale_claims(now)
            ]
            orphans = [
                (r.id, r.email, r.user_sub) for r in InvitationRepository(session).orphaned_users()
            ]
        for id, claim_id, email, user_sub, groups in stale:
            assert claim_id is not None
            existing = self._user_or_none(email)
            sub = sub_of_user(existing) if existing else None
            ours = existing is not None and (
                user_sub == sub
                or (user_sub is None and existing.get("UserStatus") == "FORCE_CHANGE_PASSWORD")
            )
            with self.db.sessions() as session, session.begin():
                repo = InvitationRepository(session)
                if (
                    ours
                    and existing is not None
                    and sub
                    and existing.get("UserStatus") == "CONFIRMED"
                ):
                    for group in groups:
                        self.gateway.admin_add_user_to_group(existing["Username"], group)
                    if repo.mark_accepted(id, claim_id, sub, utcnow()):
                        counts["accepted"] += 1
                    continue
                if ours and sub and user_sub is None:
                    repo.record_user(id, claim_id, sub, utcnow())
                if repo.release(id, claim_id, utcnow()):
                    counts["released"] += 1
        for id, email, user_sub in orphans:
            existing = self._user_or_none(email)
            ours = existing is not None and sub_of_user(existing) == user_sub
            if (
                ours
                and existing is not None
                and existing.get("UserStatus") != "FORCE_CHANGE_PASSWORD"
            ):
                # The invitee did set a password before the invitation lapsed: that is an
                # acceptance. (A revoked one is left for an admin: the account stays linked.)
                with self.db.sessions() as session, session.begin():
                    row = InvitationRepository(session).get(id)
                    if row is not None and row.status == EXPIRED:
                        row.status, row.accepted_at = ACCEPTED, utcnow()
                        counts["accepted"] += 1
                    elif row is not None:
                        row.updated_at = utcnow()  # to the back of the queue
                        log.warning(
                            "revoked invitation with a live account",
                            extra={"invitation_id": str(id)},
                        )
                continue
            if ours and existing is not None:
                self.gateway.admin_delete_user(existing["Username"])
                counts["users_deleted"] += 1
            # Deleted now, or gone already: the row no longer points at anyone.
            with self.db.sessions() as session, session.begin():
                row = InvitationRepository(session).get(id)
                if row is not None and row.status in (REVOKED, EXPIRED):
                    row.user_sub = None
        self._reconcile_abandoned(counts)
        if any(counts.values()):
            log.info("reconciled invitations", extra=counts)
        return counts

    def _reconcile_abandoned(self, counts: dict[str, int]) -> None:
        """Ended rows whose acceptance died before it recorded its user: delete the user it
        made — one still waiting for its first password, created after that acceptance
        started, and claimed by no pending or accepted invitation."""
        with self.db.sessions() as session:
            rows = [
                (r.id, r.claim_id, r.email, r.claimed_until)
                for r in InvitationRepository(session).abandoned_claims()
            ]
        for id, claim_id, email, claimed_until in rows:
            assert claim_id is not None
            existing = self._user_or_none(email)
            if existing is not None and existing.get("UserStatus") == "FORCE_CHANGE_PASSWORD":
                started = aware(claimed_until) - self.lease if claimed_until else None
                created = existing.get("UserCreateDate")
                with self.db.sessions() as session:
                    live = InvitationRepository(session).live_for(email)
                sub = sub_of_user(existing)
                claimed = any(r.status == PENDING or r.user_sub == sub for r in live)
                if (
                    not claimed
                    and started is not None
                    and isinstance(created, datetime)
                    and aware(created) >= started - CLOCK_SKEW
                ):
                    self.gateway.admin_delete_user(existing["Username"])
                    counts["users_deleted"] += 1
            with self.db.sessions() as session, session.begin():
                InvitationRepository(session).clear_claim(id, claim_id, utcnow())

    # -- helpers ------------------------------------------------------------------------

    def _find(self, session: Session, id: uuid.UUID, *, lock: bool = False) -> Invitation:
        invitation = InvitationRepository(session).get(id, for_update=lock)
        if invitation is None:
            raise errors.NotFoundError("No invitation with this id.")
        return invitation

    def _live(self, session: Session, token: str, now: datetime) -> Invitation:
        invitation = InvitationRepository(session).by_token_hash(hash_token(token))
        if invitation is None or status_of(invitation, now) != PENDING:
            raise errors.InvalidInvitationError()
        return invitation

    def _release(self, id: uuid.UUID, claim_id: uuid.UUID) -> None:
        try:
            with self.db.sessions() as session, session.begin():
                InvitationRepository(session).release(id, claim_id, utcnow())
        except Exception:  # noqa: BLE001 - the lease lapses by itself
            log.warning("could not release invitation claim; it lapses after the lease")

    def _user_or_none(self, email: str) -> dict[str, Any] | None:
        try:
            return self.gateway.admin_get_user(email)
        except UnknownUserError:
            return None

    def _check_groups(self, groups: list[str]) -> None:
        unknown: list[errors.FieldIssue] = []
        for index, group in enumerate(groups):
            try:
                self.gateway.get_group(group)
            except errors.NotFoundError:
                unknown.append(
                    (["body", "groups", index], f"The user pool has no group named {group}.")
                )
        if unknown:
            raise errors.UnknownGroupError(" ".join(msg for _, msg in unknown), issues=unknown)

    def _check_profile(
        self, given_name: str | None, family_name: str | None, attributes: dict[str, str]
    ) -> None:
        self._check_profile_values(
            {"given_name": given_name, "family_name": family_name, **attributes}
        )

    def _check_profile_values(self, values: dict[str, str | None]) -> dict[str, str]:
        # The schema keeps email, email_verified and sub out of `attributes`.
        present = {k: v for k, v in values.items() if v is not None}
        return self.pool.get().writable_attributes(present, creating=True)

    def _send(self, session: Session, invitation: Invitation, token: str) -> None:
        link = f"{self.settings.public_app_url}/accept-invitation#token={token}"
        expires = aware(invitation.expires_at).strftime("%Y-%m-%d %H:%M UTC")
        greeting = f"Hello {invitation.given_name}," if invitation.given_name else "Hello,"
        text = (
            f"{greeting}\n\nYou have been invited to create an account.\n"
            f"Open this link to choose your password:\n\n{link}\n\n"
            f"The link works once and expires on {expires}.\n"
        )
        self.outbox.enqueue(
            session,
            kind="invitation",
            to=invitation.email,
            subject="You're invited",
            text=text,
            link=link,
        )


class _Snapshot:
    __slots__ = ("email", "groups", "id", "user_sub")

    def __init__(self, id: uuid.UUID, email: str, groups: list[str], user_sub: str | None) -> None:
        self.id = id
        self.email = email
        self.groups = groups
        self.user_sub = user_sub
