"""Imports every model so that ``Base.metadata`` knows all tables (used by Alembic)."""

from authsvc.revocation.models import TokenAllowance, TokenRevocation

__all__ = ["TokenAllowance", "TokenRevocation"]
