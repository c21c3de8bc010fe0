"""All queries on contested sign-ups."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
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

    def clear(self, email: str) -> None:
        self.session.execute(delete(ContestedSignUp).where(ContestedSignUp.email == email))
