from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from authsvc.db import Base


class FederationGrant(Base):
    """A single-use secret of the federation flows, shared by every instance.

    ``kind`` is ``state`` (a started sign-in: the PKCE verifier, the app's redirect URI and
    the browser binding) or ``handoff`` (tokens waiting, 60 s, for the app to collect).
    The key itself is never stored (SHA-256 of it); the payload is sealed with
    ``AUTHSVC_SECRET_KEY``, so a database dump yields neither a verifier nor a token.
    """

    __tablename__ = "federation_grant"

    key_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    __table_args__ = (Index("ix_federation_grant_expires_at", "expires_at"),)
