from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, String
from sqlalchemy.orm import Mapped, mapped_column

from authsvc.db import Base


class ContestedSignUp(Base):
    """An address registered more than once before it was confirmed (pre-account hijacking
    defence): its confirmation must end in a password reset by the mailbox's holder."""

    __tablename__ = "contested_sign_up"

    email: Mapped[str] = mapped_column(String(254), primary_key=True)
    contested_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    # Set while a confirmation is under way; a row confirmed but not yet reset keeps it, and
    # the repair loop finishes the reset.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
