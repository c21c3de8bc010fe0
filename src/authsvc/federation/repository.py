"""All queries on ``federation_grant``."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from authsvc.federation.models import FederationGrant


class GrantRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, key_hash: str, kind: str, payload: str, expires_at: datetime) -> None:
        self.session.add(
            FederationGrant(key_hash=key_hash, kind=kind, payload=payload, expires_at=expires_at)
        )

    def take(self, key_hash: str, kind: str) -> str | None:
        """The payload of a grant, deleted in the same step: of concurrent takers of one
        key, exactly one gets it (the DELETE's row count decides). Expiry is checked by the
        caller against the time sealed in the payload."""
        payload = self.session.scalar(
            select(FederationGrant.payload).where(
                FederationGrant.key_hash == key_hash, FederationGrant.kind == kind
            )
        )
        if payload is None:
            return None
        deleted = self.session.execute(
            delete(FederationGrant).where(
                FederationGrant.key_hash == key_hash, FederationGrant.kind == kind
            )
        )
        if getattr(deleted, "rowcount", 0) != 1:
            return None
        return payload

    def prune(self, now: datetime) -> None:
        self.session.execute(delete(FederationGrant).where(FederationGrant.expires_at < now))
