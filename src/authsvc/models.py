"""Imports every model so that ``Base.metadata`` knows all tables (used by Alembic)."""

from authsvc.audit.models import AuditEvent
from authsvc.auth.models import ContestedSignUp
from authsvc.email.models import EmailOutbox
from authsvc.federation.models import FederationGrant
from authsvc.invitations.models import Invitation
from authsvc.revocation.models import TokenAllowance, TokenRevocation

__all__ = [
    "AuditEvent",
    "ContestedSignUp",
    "EmailOutbox",
    "FederationGrant",
    "Invitation",
    "TokenAllowance",
    "TokenRevocation",
]
