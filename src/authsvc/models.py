"""Imports every model so that ``Base.metadata`` knows all tables (used by Alembic)."""

from authsvc.audit.models import AuditEvent
from authsvc.auth.models import ContestedSignUp
from authsvc.email.models import EmailOutbox
from authsvc.invitations.models import Invitation
from authsvc.revocation.models import TokenAllowance, TokenRevocation

__all__ = [
    "AuditEvent",
    "ContestedSignUp",
    "EmailOutbox",
    "Invitation",
    "TokenAllowance",
    "TokenRevocation",
]
