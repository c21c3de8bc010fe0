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
    # The `iss` of the pool's tokens; default the AWS form. Set it for an emulator (or a
    # future endpoint) that issues tokens under another name.
    cognito_issuer: str | None = None
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
    # Key rotation: what the previous AUTHSVC_SECRET_KEY sealed (challenge sessions) still
    # opens while a rolling deploy replaces it.
    secret_key_previous: SecretStr | None = None
    # A sealed challenge session lives as long as Cognito's (the client's AuthSessionValidity).
    challenge_session_seconds: int = Field(default=180, ge=60, le=900)

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

    # Account protection (issue 11): TOTP off/replace needs a sign-in at most this old
    # (the token's auth_time) or the current password.
    reauth_max_age: int = Field(default=600, ge=0, le=86_400)

    # Invitations
    invitation_ttl_hours: int = Field(default=7 * 24, ge=1, le=90 * 24)
    invitation_claim_lease_seconds: int = Field(default=300, ge=5, le=3600)
    reconcile_interval_seconds: float = Field(default=60.0, gt=0)

    # Rate limits ("N/period", several separated by ";"; see the README's Security section)
    rate_limits_enabled: bool = True
    rate_limit_sign_in_ip: str = "60/minute"
    # Sign-in failures per (email, client address): only that address is refused.
    rate_limit_sign_in_failures: str = "10/15 minutes"
    rate_limit_email_ip: str = "30/5 minutes"
    rate_limit_email_identifier: str = "5/15 minutes"
    # Forgot-password has its own bucket: sign-up or resend spam must not block a reset.
    # Counted per (email, client address); see rate_limit_forgot_ceiling below.
    rate_limit_forgot_identifier: str = "5/15 minutes"
    rate_limit_verify_ip: str = "30/5 minutes"
    rate_limit_code_failures: str = "5/hour"
    # Sign-up codes live 24 h (reset codes 1 h): five wrong ones per day, then a new code.
    rate_limit_sign_up_code_failures: str = "5/day"
    rate_limit_refresh_ip: str = "150/5 minutes"
    rate_limit_invitation_ip: str = "30/5 minutes"
    # Issue 11: limits that a stranger cannot turn against the account's owner.
    # Sign-in failures per client address, whatever the email (one address spraying many).
    rate_limit_sign_in_failures_ip: str = "50/15 minutes"
    # Per email from all addresses (OWASP: at most 100 an hour): over it, only addresses
    # with failures of their own for that email wait; the owner's address is still served.
    rate_limit_sign_in_identifier_failures: str = "100/hour"
    # Forgot-password per email from all addresses; `forgot_identifier` is per (email,
    # address). Over the ceiling only addresses that asked already wait.
    rate_limit_forgot_ceiling: str = "20/hour"
    # Sign-up code resends, the same way: per (email, address), under a per-email ceiling.
    rate_limit_resend_identifier: str = "5/15 minutes"
    rate_limit_resend_ceiling: str = "20/hour"

    # Corporate directory (issue 15): sign-in with LDAP / Active Directory credentials.
    # Off unless AUTHSVC_LDAP_URL is set; see the README's "Corporate directory" section.
    ldap_url: str | None = None  # ldaps://host:636, or ldap://host:389 with StartTLS
    ldap_start_tls: bool = True  # ldap:// URLs: StartTLS before anything is sent
    ldap_ca_file: str | None = None  # PEM bundle the directory's certificate must chain to
    ldap_bind_dn: str | None = None  # the service account that searches for users
    ldap_bind_password: SecretStr | None = None
    ldap_user_base: str = ""
    ldap_user_filter: str = "(uid={username})"  # AD: (sAMAccountName={username})
    # Entries this filter excludes count as disabled: e.g. AD
    # (!(userAccountControl:1.2.840.113556.1.4.803:=2)), OpenLDAP (!(pwdAccountLockedTime=*))
    ldap_active_filter: str = ""
    ldap_mail_attribute: str = "mail"
    ldap_group_base: str = ""  # groups with member/uniqueMember = the user's DN (and memberOf)
    ldap_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # directory attribute -> Cognito attribute; directory group cn -> Cognito group (JSON)
    directory_attribute_map: dict[str, str] = Field(
        default_factory=lambda: {"givenName": "given_name", "sn": "family_name"}
    )
    directory_group_map: dict[str, str] = Field(default_factory=dict)
    # Every directory user is in this Cognito group: `authsvc directory-sync` checks them.
    directory_cognito_group: str = "directory"
    directory_client_id: str | None = None  # the app client that allows only CUSTOM_AUTH
    directory_client_secret: SecretStr | None = None
    # The proof key the Verify trigger checks: one key, or {"current": k, "previous": k}
    directory_proof_key: SecretStr | None = None
    directory_proof_ttl_seconds: int = Field(default=60, ge=5, le=300)
    directory_sync_interval_seconds: float = Field(default=0, ge=0)  # 0: only the CLI

    # Federation and AWS credentials (issue 14; README "Sign in with Google, Facebook, …").
    # Cognito's hosted UI (the user-pool domain): https://<prefix>.auth.<region>.amazoncognito.com
    federation_domain_url: str | None = None
    # Identity providers switched on in the template, by their Cognito names: Google,
    # Facebook, LoginWithAmazon, SignInWithApple, or "<name>:oidc" / "<name>:saml".
    federation_providers: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Where the app may be sent back to (web flow) or runs its own PKCE (native flow).
    federation_redirect_uris: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # authsvc's own /v1/auth/federation/callback as Cognito sees it (one of the app client's
    # CallbackURLs).
    federation_callback_url: str | None = None
    federation_state_ttl_seconds: int = Field(default=600, ge=60, le=3600)
    federation_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    identity_pool_id: str | None = None

    # Operations endpoints (issue 11.4/11.5): /metrics needs `Authorization: Bearer <token>`
    # outside dev mode (404 while unset); /readyz re-probes each dependency at most this often.
    metrics_token: SecretStr | None = None
    readiness_cache_seconds: float = Field(default=5.0, ge=1, le=300)
    # How long the pool's password policy, attributes and app-client settings are kept before
    # they are read again (a change in the console applies within this time).
    pool_info_ttl_seconds: float = Field(default=300.0, ge=1, le=86_400)

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
        "rate_limit_sign_in_failures_ip",
        "rate_limit_sign_in_identifier_failures",
        "rate_limit_forgot_ceiling",
        "rate_limit_resend_identifier",
        "rate_limit_resend_ceiling",
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

    @field_validator("federation_providers", "federation_redirect_uris", mode="before")
    @classmethod
    def _split_federation(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("federation_providers")
    @classmethod
    def _known_provider_kinds(cls, value: list[str]) -> list[str]:
        from authsvc.federation.providers import parse_provider

        for item in value:
            parse_provider(item)  # raises ValueError naming the entry
        return value

    @field_validator("federation_domain_url", "federation_callback_url")
    @classmethod
    def _absolute_federation_url(cls, value: str | None) -> str | None:
        if not value:
            return None  # the template passes "" when federation is off
        if not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value.rstrip("/") if value else value

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
        previous = self.secret_key_previous
        if previous is not None and len(previous.get_secret_value()) < 16:
            raise ValueError("AUTHSVC_SECRET_KEY_PREVIOUS must be at least 16 characters")
        if self.cognito_issuer and not self.cognito_issuer.startswith(("http://", "https://")):
            raise ValueError("AUTHSVC_COGNITO_ISSUER must be an absolute http(s) URL")
        if "_" not in self.cognito_user_pool_id:
            raise ValueError("AUTHSVC_COGNITO_USER_POOL_ID must look like '<region>_<id>'")
        if self.federation_providers and not (
            self.federation_domain_url and self.federation_callback_url
        ):
            raise ValueError(
                "AUTHSVC_FEDERATION_PROVIDERS needs AUTHSVC_FEDERATION_DOMAIN_URL and"
                " AUTHSVC_FEDERATION_CALLBACK_URL"
            )
        return self

    @model_validator(mode="after")
    def _directory_configured(self) -> Settings:
        if not self.ldap_url:
            return self
        if not self.ldap_url.startswith(("ldaps://", "ldap://")):
            raise ValueError("AUTHSVC_LDAP_URL must start with ldaps:// or ldap://")
        if self.ldap_url.startswith("ldap://") and not self.ldap_start_tls:
            raise ValueError(
                "AUTHSVC_LDAP_START_TLS must be true for an ldap:// URL: directory passwords"
                " never travel in clear text"
            )
        if "{username}" not in self.ldap_user_filter:
            raise ValueError("AUTHSVC_LDAP_USER_FILTER must contain {username}")
        if not self.directory_client_id:
            raise ValueError("AUTHSVC_DIRECTORY_CLIENT_ID is required with AUTHSVC_LDAP_URL")
        if not self.directory_proof_keys:
            raise ValueError(
                "AUTHSVC_DIRECTORY_PROOF_KEY is required with AUTHSVC_LDAP_URL (at least 32"
                ' characters, or {"current": ..., "previous": ...})'
            )
        return self

    @cached_property
    def directory_proof_keys(self) -> list[str]:
        """Signing key first; the previous one is accepted by the trigger during a rotation."""
        from authsvc.directory.triggers import parse_keys

        raw = self.directory_proof_key
        return parse_keys(raw.get_secret_value()) if raw is not None else []

    @cached_property
    def allowed_origins(self) -> frozenset[str]:
        """Origins that may use CORS with credentials and the refresh cookie."""
        return frozenset(origin.rstrip("/") for origin in self.cors_origins)

    @cached_property
    def issuer(self) -> str:
        if self.cognito_issuer:
            return self.cognito_issuer.rstrip("/")
        return (
            f"https://cognito-idp.{self.cognito_region}.amazonaws.com/{self.cognito_user_pool_id}"
        )

    @cached_property
    def jwks_url(self) -> str:
        if self.cognito_jwks_url:
            return self.cognito_jwks_url
        if self.cognito_issuer:
            return f"{self.issuer}/.well-known/jwks.json"
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


def serve_settings() -> Settings:
    """Settings for `authsvc serve` and its workers (and `reconcile`, `deliver`): never dev
    mode, whatever AUTHSVC_DEV_MODE says. Dev mode opens /dev/outbox (every code), turns
    HSTS off and uses fake AWS credentials; only `authsvc dev` may turn it on."""
    return Settings(dev_mode=False)
