"""All queries on the revocation tables."""

from __future__ import annotations

from sqlalchemy import delete, or_, select
from sqlalchemy.orm import Session

from authsvc.revocation.models import TokenAllowance, TokenRevocation


class RevocationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def upsert(self, sub: str, revoked_at_us: int, recorded_at_us: int) -> None:
        row = self.session.get(TokenRevocation, sub)
        if row is None:
            self.session.add(
                TokenRevocation(sub=sub, revoked_at_us=revoked_at_us, recorded_at_us=recorded_at_us)
            )
        elif row.revoked_at_us < revoked_at_us:
            row.revoked_at_us = revoked_at_us
            row.recorded_at_us = recorded_at_us

    def get(self, sub: str) -> int | None:
        row = self.session.get(TokenRevocation, sub)
        return row.revoked_at_us if row else None

    def changed_since(self, recorded_at_us: int) -> list[tuple[str, int, int]]:
        """(sub, revoked_at_us, recorded_at_us) of rows written after ``recorded_at_us``."""
        rows = self.session.execute(
            select(
                TokenRevocation.sub, TokenRevocation.revoked_at_us, TokenRevocation.recorded_at_us
            ).where(
                # revoked_at_us too: a task of the previous release (rolling deploy) writes
                # rows without recorded_at_us.
                or_(
                    TokenRevocation.recorded_at_us > recorded_at_us,
                    TokenRevocation.revoked_at_us > recorded_at_us,
                )
            )
        )
        return [(sub, at, recorded) for sub, at, recorded in rows]

    def allow(self, jti: str, sub: str, issued_after_us: int, expires_at: int) -> None:
        if self.session.get(TokenAllowance, jti) is None:
            self.session.add(
                TokenAllowance(
                    jti=jti, sub=sub, issued_after_us=issued_after_us, expires_at=expires_at
                )
            )

    def issued_after(self, jti: str, sub: str) -> int | None:
        """When the token was known to be issued after (µs), if authsvc recorded it."""
        row = self.session.get(TokenAllowance, jti)
        return row.issued_after_us if row is not None and row.sub == sub else None

    def prune(self, now_s: int, horizon_us: int) -> None:
        self.session.execute(delete(TokenAllowance).where(TokenAllowance.expires_at < now_s))
        self.session.execute(
            delete(TokenRevocation).where(TokenRevocation.revoked_at_us < horizon_us)
        )
