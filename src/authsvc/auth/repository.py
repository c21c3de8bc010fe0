"""All queries on contested sign-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from authsvc.auth.models import ContestedSignUp


class ContestedSignUpRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def mark(self, email: str, now: datetime) -> None:
        row = self.session.get(ContestedSignUp, email)
        if row is None:
            self.session.add(ContestedSignUp(email=email, contested_at=now))
        else:
            row.contested_at = now

    def is_contested(self, email: str) -> bool:
        return self.session.get(ContestedSignUp, email) is not None

    def confirming(self, email: str, at: datetime | None) -> None:
        """Note (or, with None, un-note) that the address is being confirmed."""
        self.session.execute(
            update(ContestedSignUp).where(ContestedSignUp.email == email).values(confirmed_at=at)
        )

    def confirming_before(self, before: datetime, limit: int = 50) -> list[str]:
        rows = self.session.scalars(
            select(ContestedSignUp.email)
            .where(ContestedSignUp.confirmed_at.is_not(None), ContestedSignUp.confirmed_at < before)
            .limit(limit)
        )
        return list(rows)

    def clear(self, email: str) -> None:
        self.session.execute(delete(ContestedSignUp).where(ContestedSignUp.email == email))
