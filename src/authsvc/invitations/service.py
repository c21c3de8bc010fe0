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

import logging
import uuid

from authsvc import errors
from authsvc.auth.schemas import TokenResult
from authsvc.cognito.errors import AccountExistsError
from authsvc.cognito.gateway import challenge_username, from_attribute_list
from authsvc.cognito.gateway import user_sub as sub_of_user
from authsvc.invitations import schemas
from authsvc.invitations.models import ACCEPTED
from authsvc.invitations.records import (
    SAGA_STEPS,
    _Snapshot,
    hash_token,
    new_token,
    temporary_password,
    utcnow,
)
from authsvc.invitations.repair import InvitationRepair
from authsvc.invitations.repository import InvitationRepository

# The records' names stay importable from here (tests and callers use this module).
__all__ = [
    "SAGA_STEPS",
    "InvitationService",
    "hash_token",
    "new_token",
    "temporary_password",
    "utcnow",
]

log = logging.getLogger("authsvc.invitations")


class InvitationService(InvitationRepair):
    """Invitations: the ledger (ledger.py), the repairs (repair.py) and, here, acceptance."""

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
