"""The app factory: state, routers, exception handlers, middleware."""

from __future__ import annotations

import gc
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from authsvc import docs, metrics, problems, tracing
from authsvc import openapi as api_document
from authsvc.admin.endpoints import router as admin_router
from authsvc.admin.service import AdminService
from authsvc.audit.endpoints import router as audit_router
from authsvc.audit.service import AuditLog
from authsvc.auth.endpoints import router as auth_router
from authsvc.auth.sealing import ChallengeSealer
from authsvc.auth.service import AuthService
from authsvc.clientip import parse_networks
from authsvc.cognito.budget import CognitoBudget
from authsvc.cognito.gateway import CognitoGateway
from authsvc.cognito.pool import PoolInfoCache
from authsvc.cognito.tokens import TokenVerifier
from authsvc.config import Settings, serve_settings
from authsvc.cors import ALLOWED_HEADERS, ALLOWED_METHODS, ProblemCORSMiddleware
from authsvc.db import Database
from authsvc.dev.outbox import DevOutbox, shared_outbox
from authsvc.directory.endpoints import router as directory_router
from authsvc.email.backends import make_backend
from authsvc.email.crypto import PayloadCipher
from authsvc.email.outbox import Outbox, OutboxWorker, Periodic
from authsvc.federation.endpoints import router as federation_router
from authsvc.federation.service import FederationService
from authsvc.health.endpoints import router as health_router
from authsvc.health.endpoints import state_sample
from authsvc.invitations.endpoints import router as invitations_router
from authsvc.invitations.service import InvitationService
from authsvc.mfa.endpoints import router as mfa_router
from authsvc.mfa.service import MfaService
from authsvc.middleware import AuthSvcMiddleware
from authsvc.profile.endpoints import router as profile_router
from authsvc.profile.service import ProfileService
from authsvc.revocation.service import RevocationRegistry
from authsvc.schema_gate import SchemaGate
from authsvc.security.ratelimit import RateLimits
from authsvc.state import AppState

log = logging.getLogger("authsvc.metrics")

DESCRIPTION = """\
A complete account system on Amazon Cognito user pools: sign-up, sign-in with challenges,
refresh, sign-out that really ends sessions, password lifecycle and profile.

Errors are RFC 9457 problem documents; branch on `code`.
"""


def build_state(
    settings: Settings,
    *,
    gateway: CognitoGateway | None = None,
    outbox: DevOutbox | None = None,
) -> AppState:
    if gateway is None:
        if settings.dev_mode:
            from authsvc.dev.gateway import DevCognitoGateway

            outbox = outbox or shared_outbox(settings.database_url)
            gateway = DevCognitoGateway(settings, outbox)
        else:
            gateway = CognitoGateway(settings)
    # The budget protects the account's Cognito quotas; the dev emulator has none, so in dev
    # mode it is off unless a budget setting is given explicitly.
    explicit_budget = any(f.startswith("cognito_budget_") for f in settings.model_fields_set)
    if not settings.dev_mode or explicit_budget:
        gateway.budget = CognitoBudget(settings.cognito_budget, settings.redis_url)
    db = Database(
        settings.database_url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=settings.db_pool_pre_ping,
        connect_timeout=settings.db_connect_timeout,
    )
    revocations = RevocationRegistry(db)
    pool = PoolInfoCache(gateway, settings.pool_info_ttl_seconds)
    verifier = TokenVerifier(settings, is_revoked=revocations.is_revoked)
    # Dev mode without a configured key: an ephemeral one (the queue is local anyway).
    secret = (
        settings.secret_key.get_secret_value() if settings.secret_key else secrets.token_urlsafe(32)
    )
    cipher = PayloadCipher(secret)
    outbox_queue = Outbox(cipher)
    worker = OutboxWorker(
        db,
        cipher,
        make_backend(settings, outbox if settings.dev_mode else None),
        poll_seconds=settings.outbox_poll_seconds,
        max_attempts=settings.outbox_max_attempts,
        lease_seconds=settings.outbox_lease_seconds,
    )
    outbox_queue.on_commit = worker.wake
    sealer = ChallengeSealer(
        secret,
        ttl_seconds=settings.challenge_session_seconds,
        previous=[settings.secret_key_previous.get_secret_value()]
        if settings.secret_key_previous
        else [],
    )
    auth = AuthService(gateway, pool, revocations, sealer, db)
    if settings.ldap_url:
        # Directory users sign in through the directory only (README "Corporate directory").
        auth.password_refused_group = settings.directory_cognito_group
    federation = (
        FederationService(settings, db, cipher, auth, verifier)
        if settings.federation_providers or settings.identity_pool_id
        else None
    )
    if federation is not None:
        auth.refresh_revoker = federation.revoke_refresh_token  # sign-out: /oauth2/revoke
    return AppState(
        settings=settings,
        gateway=gateway,
        pool=pool,
        verifier=verifier,
        db=db,
        revocations=revocations,
        auth=auth,
        profile=ProfileService(gateway, pool),
        invitations=InvitationService(settings, db, gateway, pool, outbox_queue, auth),
        outbox_worker=worker,
        admin=AdminService(gateway, pool, revocations, auth.end_cognito_sessions),
        audit=AuditLog(db, enabled=settings.audit_enabled),
        trusted_proxies=parse_networks(settings.trusted_proxies),
        limits=RateLimits(settings),
        mfa=MfaService(
            gateway,
            settings.totp_issuer,
            auth=auth,
            db=db,
            outbox=outbox_queue,
            reauth_max_age=settings.reauth_max_age,
        ),
        outbox=outbox if settings.dev_mode else None,
        federation=federation,
    )


def _last_flush() -> None:
    """What the requests of the last second recorded (the flusher runs once a second) goes
    into the registry before the process exits: in multiprocess mode, into the files the
    other workers' scrapes read."""
    try:
        metrics.flush()
    except Exception:  # noqa: BLE001 - shutting down goes on
        log.exception("metrics: the last flush failed")


def create_app(
    settings: Settings | None = None,
    *,
    gateway: CognitoGateway | None = None,
    outbox: DevOutbox | None = None,
) -> FastAPI:
    settings = settings or Settings()
    state = build_state(settings, gateway=gateway, outbox=outbox)

    def sample() -> dict[str, float]:
        return state_sample(state)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        metrics.add_sampler(sample)
        metrics.start_flusher()
        state.verifier.jwks.prefetch()
        state.revocations.start()
        reconciler = Periodic(
            "invitation-reconciler",
            state.invitations.reconcile,
            settings.reconcile_interval_seconds,
        )

        def start_background() -> None:
            state.outbox_worker.start()
            state.audit.start()
            reconciler.start()

        # Issue 16: on a database that is not migrated (or not reachable) these workers wait,
        # instead of each logging the same error every pass. The revocation poller and the
        # sign-out retries always run (they guard tokens, and they are quiet on repeat).
        gate = SchemaGate(state.db.engine, start_background)
        gate.open()
        sign_outs = Periodic("cognito-sign-out-retry", state.auth.retry_pending_sign_outs, 5.0)
        sign_outs.start()
        # Issue 12: what start-up built lives as long as the process; frozen, the collector's
        # full passes stop walking it (boto3's, pydantic's and SQLAlchemy's objects) while
        # requests are being answered.
        gc.freeze()
        try:
            yield
        finally:
            metrics.remove_sampler(sample)
            gate.stop()
            sign_outs.stop()
            reconciler.stop()
            state.outbox_worker.stop()
            state.audit.stop()
            state.revocations.stop()
            _last_flush()
            state.db.dispose()
            if traced is not None:
                traced.shutdown()

    app = FastAPI(
        title="authsvc",
        version=api_document.package_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc come from the package (docs.py); AUTHSVC_DOCS=false: none at all.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs else None,
        generate_unique_id_function=api_document.operation_id,
        # No empty 307 for a trailing slash: a 404 problem names the route (problems.py).
        redirect_slashes=False,
        # FastAPI's own OpenTelemetry hooks: off. Traces come from tracing.py (the FastAPI
        # instrumentation), and the hooks' "is a provider configured?" test alone costs
        # about 4 µs per request.
        telemetry={"tracing": False, "metrics": False, "logs": False, "operation_spans": False},
    )
    app.state.authsvc = state
    # OpenTelemetry only when OTEL_EXPORTER_OTLP_ENDPOINT is set (nothing imported otherwise).
    traced = tracing.instrument(app, state.db.engine) if tracing.configured() else None
    problems.install(app)
    if settings.docs:
        docs.install(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = api_document.finish(FastAPI.openapi(app))
            app.openapi_schema = problems.complete_document(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.include_router(auth_router)
    app.include_router(directory_router)
    app.include_router(profile_router)
    app.include_router(mfa_router)
    app.include_router(invitations_router)
    app.include_router(admin_router)
    app.include_router(audit_router)
    app.include_router(health_router)
    app.include_router(federation_router)
    if settings.dev_mode:
        from authsvc.dev.endpoints import mount_spa
        from authsvc.dev.endpoints import router as dev_router

        app.include_router(dev_router)
        mount_spa(app)
        if settings.federation_providers:
            from authsvc.dev.hosted_ui import mount_hosted_ui

            mount_hosted_ui(app, state)  # stand-in for Cognito's /oauth2/* (no hosted UI in moto)
    # Always on, even with no origin listed: a refused preflight is then a problem document
    # naming AUTHSVC_CORS_ORIGINS, not a bare 405 (cors.py). No Origin header: no work.
    app.add_middleware(
        ProblemCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_credentials=True,
        allow_methods=ALLOWED_METHODS,
        allow_headers=ALLOWED_HEADERS,
        max_age=600,
    )
    app.add_middleware(
        AuthSvcMiddleware,
        max_body_bytes=settings.max_body_bytes,
        hsts=not settings.dev_mode,
        trusted_proxies=state.trusted_proxies,
        traced=traced is not None,
    )
    return app


def create_app_from_env() -> FastAPI:
    """Factory for ``uvicorn --factory`` (``authsvc serve``). Each worker process configures
    its own JSON logging: with several workers, uvicorn spawns fresh interpreters."""
    from authsvc import logs

    settings = serve_settings()
    logs.configure(settings.log_level, json_lines=True)
    if settings.email_backend == "console" and not settings.dev_mode:
        logging.getLogger("authsvc.email").warning(
            "AUTHSVC_EMAIL_BACKEND=console: emails (invitation links) are not delivered;"
            " set smtp or ses"
        )
    return create_app(settings)
