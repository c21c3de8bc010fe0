"""`authsvc dev`: the embedded default. Cognito emulator, SQLite, dev outbox, seeded admin."""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from authsvc.config import Settings
from authsvc.dev.directory import directory_lines
from authsvc.dev.emulator import (
    EmbeddedCognito,
    ProvisionedPool,
    default_template_path,
    load_template,
    provision,
)


@dataclass
class DevEnvironment:
    settings: Settings
    emulator: EmbeddedCognito
    pool: ProvisionedPool
    admin_email: str
    admin_password: str
    generated_password: bool
    directory: Any = None  # AUTHSVC_DEV_DIRECTORY=1: the dev slapd (authsvc.dev.slapd)


def generate_password() -> str:
    # Meets every rule of the template's policy whatever the random part holds.
    return "Aa1!" + secrets.token_urlsafe(12)


def start(
    *, host: str, port: int, data_dir: Path, overrides: dict[str, Any] | None = None
) -> DevEnvironment:
    # TOTP codes are only checked by moto with this set; it is what real Cognito does.
    os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ENABLE_TOTP", "true")
    emulator = EmbeddedCognito()
    endpoint = emulator.start()
    client = emulator.client()
    pool = provision(client, load_template(default_template_path()))
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    values: dict[str, Any] = {
        "cognito_region": pool.region,
        "cognito_user_pool_id": pool.user_pool_id,
        "cognito_client_id": pool.client_id,
        "cognito_client_secret": pool.client_secret,
        "cognito_endpoint_url": endpoint,
        # Invitation links open the example SPA, which this server also serves.
        "public_app_url": f"http://{host}:{port}/dev/spa",
        "dev_mode": True,
        "email_backend": "console",
    }
    directory = None
    if os.environ.get("AUTHSVC_DEV_DIRECTORY", "").lower() in {"1", "true", "yes"}:
        from authsvc.dev.directory import DevDirectoryError, start_dev_directory

        try:
            directory, directory_values = start_dev_directory(
                client, load_template(default_template_path()), pool
            )
        except DevDirectoryError:
            emulator.stop()
            raise
        values.update(directory_values)
    values.update(federation_defaults(client, pool, host, port))
    if not os.environ.get("AUTHSVC_CORS_ORIGINS"):
        values["cors_origins"] = [f"http://{host}:{port}"]  # the SPA's own origin
    if not os.environ.get("AUTHSVC_SECRET_KEY"):
        values["secret_key"] = dev_secret_key(data_dir)
    if not os.environ.get("AUTHSVC_DATABASE_URL"):
        database = (data_dir / "authsvc.db").resolve()
        private_file(database)  # before SQLite creates it with the umask's mode (0644)
        values["database_url"] = f"sqlite:///{database}"
    values.update(overrides or {})
    settings = Settings(**values)  # env vars fill what is not given here
    admin_email = os.environ.get("AUTHSVC_DEV_ADMIN_EMAIL", "admin@example.com").strip().lower()
    configured = os.environ.get("AUTHSVC_DEV_ADMIN_PASSWORD")
    admin_password = configured or generate_password()
    seed_admin(client, pool, admin_email, admin_password)
    return DevEnvironment(
        settings, emulator, pool, admin_email, admin_password, configured is None, directory
    )


def federation_defaults(client: Any, pool: ProvisionedPool, host: str, port: int) -> dict[str, Any]:
    """Federation through the hosted-UI stand-in this server mounts at /dev/cognito (moto has
    no hosted UI), and an identity pool in the emulator bound to the dev user pool. The
    AUTHSVC_FEDERATION_* variables, when set, win."""
    from authsvc.dev.emulator import ensure_identity_pool

    base = f"http://{host}:{port}"
    values: dict[str, Any] = {}
    if not os.environ.get("AUTHSVC_FEDERATION_DOMAIN_URL"):
        values["federation_domain_url"] = f"{base}/dev/cognito"
    if not os.environ.get("AUTHSVC_FEDERATION_CALLBACK_URL"):
        values["federation_callback_url"] = f"{base}/v1/auth/federation/callback"
    if not os.environ.get("AUTHSVC_FEDERATION_PROVIDERS"):
        values["federation_providers"] = [
            "Google",
            "Facebook",
            "LoginWithAmazon",
            "SignInWithApple",
        ]
    if not os.environ.get("AUTHSVC_FEDERATION_REDIRECT_URIS"):
        values["federation_redirect_uris"] = [f"{base}/dev/spa/"]
    if not os.environ.get("AUTHSVC_IDENTITY_POOL_ID"):
        values["identity_pool_id"] = ensure_identity_pool(client, pool)
    return values


def dev_secret_key(data_dir: Path) -> str:
    """The key that encrypts queued emails in dev mode, kept beside the SQLite file."""
    path = data_dir / "secret_key"
    if not path.exists():
        private_file(path)
        path.write_text(secrets.token_urlsafe(32))
    return path.read_text().strip()


def private_file(path: Path) -> None:
    """Create ``path`` readable by its owner only (0600), or tighten an existing one: the
    dev database holds invitations and audit events, the key file decrypts queued emails."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    os.close(fd)
    path.chmod(0o600)


def seed_admin(client: Any, pool: ProvisionedPool, email: str, password: str) -> None:
    try:
        client.admin_create_user(
            UserPoolId=pool.user_pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            TemporaryPassword=generate_password(),
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "given_name", "Value": "Dev"},
                {"Name": "family_name", "Value": "Admin"},
            ],
        )
    except client.exceptions.UsernameExistsException:
        pass
    client.admin_set_user_password(
        UserPoolId=pool.user_pool_id, Username=email, Password=password, Permanent=True
    )
    for group in pool.groups:
        if group == "admin" or group.endswith("admin"):
            client.admin_add_user_to_group(
                UserPoolId=pool.user_pool_id, Username=email, GroupName=group
            )


def banner(
    env: DevEnvironment, host: str, port: int, started: float, *, unsafe_public: bool = False
) -> str:
    base = f"http://{host}:{port}"
    password = env.admin_password if env.generated_password else "(from AUTHSVC_DEV_ADMIN_PASSWORD)"
    lines = [
        "",
        "  authsvc dev — embedded Cognito emulator, SQLite, dev outbox",
        f"  API docs    {base}/docs",
        f"  Dev outbox  {base}/dev/outbox",
        f"  Example SPA {base}/dev/spa/",
        f"  Admin       {env.admin_email} / {password}",
        f"  Cognito     {env.settings.cognito_endpoint_url} (pool {env.pool.user_pool_id})",
        f"  Database    {env.settings.database_url}",
        *directory_lines(env.directory),
        f"  Ready in {time.perf_counter() - started:.1f}s."
        " Users live in memory: they are gone after a restart.",
        "",
    ]
    if unsafe_public:
        lines[1:1] = [
            f"  WARNING: --unsafe-public: listening on {host}. Anyone who can reach this port",
            "  reads every code and reset link at /dev/outbox, and tokens are signed with a key",
            "  published in moto's package. Never use this on a shared or public network.",
            "",
        ]
    return "\n".join(lines)
