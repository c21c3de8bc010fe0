"""Repairs: acceptances that crashed (their lease lapsed), and half-made users of
invitations that were revoked or expired (``authsvc reconcile``, and the periodic job)."""

from __future__ import annotations

import logging
from datetime import datetime

from authsvc.cognito.gateway import user_sub as sub_of_user
from authsvc.cursors import aware
from authsvc.invitations.ledger import InvitationLedger
from authsvc.invitations.models import ACCEPTED, EXPIRED, PENDING, REVOKED
from authsvc.invitations.records import (
    CLOCK_SKEW,
    utcnow,
)
from authsvc.invitations.repository import InvitationRepository

log = logging.getLogger("authsvc.invitations")


class InvitationRepair(InvitationLedger):
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
