from __future__ import annotations

from sqlalchemy import BigInteger, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from authsvc.db import Base


class TokenRevocation(Base):
    """Every token of ``sub`` issued before ``revoked_at_us`` (µs since the epoch) is dead."""

    __tablename__ = "token_revocation"

    sub: Mapped[str] = mapped_column(String(128), primary_key=True)
    revoked_at_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    # When the row was last written (µs): what instances poll on. A revocation held in
    # memory through a database outage is written late with its original revoked_at_us,
    # and must still be picked up.
    recorded_at_us: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")

    __table_args__ = (
        Index("ix_token_revocation_revoked_at_us", "revoked_at_us"),
        Index("ix_token_revocation_recorded_at_us", "recorded_at_us"),
    )


class TokenAllowance(Base):
    """A token issued by authsvc after a revocation, within the revocation's own second.

    Cognito's ``iat`` is whole seconds, so it cannot tell such a token from one issued just
    before the revocation; this row can.
    """

    __tablename__ = "token_allowance"

    jti: Mapped[str] = mapped_column(String(128), primary_key=True)
    sub: Mapped[str] = mapped_column(String(128), nullable=False)
    # The Cognito call that produced the token began after this instant (µs).
    issued_after_us: Mapped[int] = mapped_column(BigInteger, nullable=False)
    expires_at: Mapped[int] = mapped_column(BigInteger, nullable=False)
