"""Everything app-wide, built once at start-up and kept on ``app.state.authsvc``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from authsvc.admin.service import AdminService
from authsvc.audit.service import AuditLog
from authsvc.auth.service import AuthService
from authsvc.clientip import Network
from authsvc.cognito.gateway import CognitoGateway
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import TokenVerifier
from authsvc.config import Settings
from authsvc.db import Database
from authsvc.dev.outbox import DevOutbox
from authsvc.email.outbox import OutboxWorker
from authsvc.invitations.service import InvitationService
from authsvc.mfa.service import MfaService
from authsvc.profile.service import ProfileService
from authsvc.revocation.service import RevocationRegistry
from authsvc.security.ratelimit import RateLimits

if TYPE_CHECKING:
    from authsvc.federation.service import FederationService


@dataclass
class AppState:
    settings: Settings
    gateway: CognitoGateway
    pool: PoolInfoCache
    verifier: TokenVerifier
    db: Database
    revocations: RevocationRegistry
    auth: AuthService
    profile: ProfileService
    invitations: InvitationService
    admin: AdminService
    audit: AuditLog
    trusted_proxies: tuple[Network, ...]
    limits: RateLimits
    mfa: MfaService
    outbox_worker: OutboxWorker
    outbox: DevOutbox | None = None
    federation: FederationService | None = None
