"""Settings, read from the environment with the ``AUTHSVC_`` prefix (DESIGN §6)."""

from __future__ import annotations

import json
from functools import cached_property
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTHSVC_", extra="ignore", frozen=True)

    # Cognito
    cognito_region: str = "us-east-1"
    cognito_user_pool_id: str = ""
    cognito_client_id: str = ""
    cognito_client_secret: SecretStr | None = None
    cognito_endpoint_url: str | None = None
    cognito_jwks_url: str | None = None
    cognito_connect_timeout: float = Field(default=2.0, gt=0)
    cognito_read_timeout: float = Field(default=5.0, gt=0)
    cognito_max_attempts: int = Field(default=3, ge=1, le=10)
    # Outbound budget per Cognito quota category, requests per second (0: no budget).
    cognito_budget_user_authentication: int = Field(default=120, ge=0)
    cognito_budget_user_creation: int = Field(default=50, ge=0)
    cognito_budget_user_account_recovery: int = Field(default=30, ge=0)
    cognito_budget_user_read: int = Field(default=120, ge=0)
    cognito_budget_user_update: int = Field(default=25, ge=0)
    cognito_budget_user_list: int = Field(default=30, ge=0)

    # Token verification
    jwt_leeway_seconds: int = Field(default=0, ge=0, le=300)
    jwks_min_refetch_seconds: float = Field(default=10.0, ge=0)
    verified_token_cache_size: int = Field(default=10_000, ge=0)

    # Storage
    database_url: str = "sqlite:///.authsvc/authsvc.db"
    db_pool_size: int = Field(default=10, ge=1, le=200)
    db_max_overflow: int = Field(default=10, ge=0, le=200)
    db_pool_timeout: float = Field(
        default=5.0, gt=0, description="seconds to wait for a connection"
    )
    db_connect_timeout: int = Field(default=3, ge=1, le=60)
    db_pool_pre_ping: bool = True
    redis_url: str | None = None

    # Application
    public_app_url: str = "http://127.0.0.1:8000"
    # NoDecode: the environment gives a comma-separated list, not JSON (the validator splits).
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    admin_group: str = "admin"
    # Proxies whose X-Forwarded-For is believed (IPs or CIDRs, comma-separated).
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    audit_enabled: bool = True
    totp_issuer: str = Field(default="authsvc", min_length=1, max_length=64)
    refresh_cookie_max_age_days: int = Field(default=30, ge=1, le=3650)
    email_backend: Literal["console", "smtp", "ses"] = "console"
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    log_level: str = "INFO"
    workers: int = Field(default=1, ge=1, le=64)
    # On SIGTERM: stop accepting, let requests in flight finish for at most this long.
    shutdown_timeout_seconds: int = Field(default=30, ge=1, le=600)

    # Secrets: encrypts outbox payloads (they carry invitation tokens). `authsvc dev`
    # generates one under its data directory.
    secret_key: SecretStr | None = None

    # Email
    email_from: str = "authsvc <no-reply@example.com>"
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = True
    smtp_ssl: bool = False
    ses_region: str | None = None
    ses_endpoint_url: str | None = None
    outbox_poll_seconds: float = Field(default=1.0, gt=0)
    outbox_max_attempts: int = Field(default=8, ge=1, le=50)
    # A claimed message whose worker died is sent again once this lapses (at least once):
    # keep it well above one delivery's time (the SMTP timeout is 10 s) or a slow send is
    # sent twice.
    outbox_lease_seconds: float = Field(default=120.0, ge=1, le=3600)

    # Invitations
    invitation_ttl_hours: int = Field(default=7 * 24, ge=1, le=90 * 24)
    invitation_claim_lease_seconds: int = Field(default=300, ge=5, le=3600)
    reconcile_interval_seconds: float = Field(default=60.0, gt=0)

    # Rate limits ("N/period", several separated by ";"; see the README's Security section)
    rate_limits_enabled: bool = True
    rate_limit_sign_in_ip: str = "60/minute"
    rate_limit_sign_in_failures: str = "10/15 minutes;100/hour"
    rate_limit_email_ip: str = "30/5 minutes"
    rate_limit_email_identifier: str = "5/15 minutes"
    # Forgot-password has its own bucket: sign-up or resend spam must not block a reset.
    rate_limit_forgot_identifier: str = "5/15 minutes"
    rate_limit_verify_ip: str = "30/5 minutes"
    rate_limit_code_failures: str = "5/hour"
    # Sign-up codes live 24 h (reset codes 1 h): five wrong ones per day, then a new code.
    rate_limit_sign_up_code_failures: str = "5/day"
    rate_limit_refresh_ip: str = "150/5 minutes"
    rate_limit_invitation_ip: str = "30/5 minutes"

    # API docs (issue 13): /docs, /redoc and /openapi.json, served from the package (no CDN).
    docs: bool = True

    # Dev mode (set by `authsvc dev`, never from the environment in production)
    dev_mode: bool = False

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_networks(cls, value: list[str]) -> list[str]:
        import ipaddress

        for item in value:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or CIDR block") from None
        return value

    @field_validator(
        "rate_limit_sign_in_ip",
        "rate_limit_sign_in_failures",
        "rate_limit_email_ip",
        "rate_limit_email_identifier",
        "rate_limit_forgot_identifier",
        "rate_limit_verify_ip",
        "rate_limit_code_failures",
        "rate_limit_sign_up_code_failures",
        "rate_limit_refresh_ip",
        "rate_limit_invitation_ip",
    )
    @classmethod
    def _valid_limits(cls, value: str) -> str:
        from limits import parse_many

        try:
            if not parse_many(value):
                raise ValueError
        except ValueError:
            raise ValueError(
                f"{value!r} is not a rate limit like '10/15 minutes;100/hour'"
            ) from None
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _no_wildcard(cls, value: list[str]) -> list[str]:
        if "*" in value:
            raise ValueError("'*' is not allowed: list the exact origins (credentials are used)")
        return value

    @field_validator("public_app_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _cognito_configured(self) -> Settings:
        if not self.cognito_user_pool_id:
            raise ValueError("AUTHSVC_COGNITO_USER_POOL_ID is required")
        if not self.cognito_client_id:
            raise ValueError("AUTHSVC_COGNITO_CLIENT_ID is required")
        if not self.dev_mode and self.secret_key is None:
            raise ValueError(
                "AUTHSVC_SECRET_KEY is required (at least 16 random characters; it encrypts"
                " queued emails)"
            )
        if self.secret_key is not None and len(self.secret_key.get_secret_value()) < 16:
            raise ValueError("AUTHSVC_SECRET_KEY must be at least 16 characters")
        if "_" not in self.cognito_user_pool_id:
            raise ValueError("AUTHSVC_COGNITO_USER_POOL_ID must look like '<region>_<id>'")
        return self

    @cached_property
    def allowed_origins(self) -> frozenset[str]:
        """Origins that may use CORS with credentials and the refresh cookie."""
        return frozenset(origin.rstrip("/") for origin in self.cors_origins)

    @cached_property
    def issuer(self) -> str:
        return (
            f"https://cognito-idp.{self.cognito_region}.amazonaws.com/{self.cognito_user_pool_id}"
        )

    @cached_property
    def jwks_url(self) -> str:
        if self.cognito_jwks_url:
            return self.cognito_jwks_url
        if self.cognito_endpoint_url:
            base = self.cognito_endpoint_url.rstrip("/")
            return f"{base}/{self.cognito_user_pool_id}/.well-known/jwks.json"
        return f"{self.issuer}/.well-known/jwks.json"

    @property
    def cognito_budget(self) -> dict[str, int]:
        return {
            "UserAuthentication": self.cognito_budget_user_authentication,
            "UserCreation": self.cognito_budget_user_creation,
            "UserAccountRecovery": self.cognito_budget_user_account_recovery,
            "UserRead": self.cognito_budget_user_read,
            "UserUpdate": self.cognito_budget_user_update,
            "UserList": self.cognito_budget_user_list,
        }

    @property
    def client_secret(self) -> str | None:
        return self.cognito_client_secret.get_secret_value() if self.cognito_client_secret else None
