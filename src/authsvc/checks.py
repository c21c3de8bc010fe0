"""`authsvc check-config`: every configuration problem at once, then each dependency.

`authsvc serve` runs the same at start-up: configuration problems stop it (one line each);
a dependency that is down is logged and the service starts anyway, so an instance comes up
while (say) the database restarts and /readyz tells the load balancer when it is ready.
"""

from __future__ import annotations

import hmac
import smtplib
import ssl
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from email.utils import parseaddr
from typing import Any

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from authsvc.config import Settings

# Values that satisfy a model-level "AUTHSVC_X is required", so that validation can go on
# and report the next problem too (Settings stops at the first one a validator raises).
_PLACEHOLDERS: dict[str, Any] = {
    "cognito_user_pool_id": "us-east-1_checkconfig",
    "cognito_client_id": "check-config",
    "secret_key": "check-config-placeholder-key",
}


@dataclass(frozen=True)
class Result:
    name: str
    ok: bool
    detail: str = ""

    def line(self) -> str:
        status = "ok  " if self.ok else "FAIL"
        return f"{status} {self.name}" + (f": {self.detail}" if self.detail else "")


def env_name(field: str) -> str:
    return f"AUTHSVC_{field.upper()}"


def _field_of(message: str) -> str | None:
    head = message.split(" ", 1)[0].rstrip(":,")
    if head.startswith("AUTHSVC_"):
        field = head.removeprefix("AUTHSVC_").lower()
        if field in Settings.model_fields:
            return field
    return None


def _default(info: FieldInfo) -> Any:
    return info.get_default(call_default_factory=True)


def load_settings(**fixed: Any) -> tuple[Settings | None, list[str], set[str]]:
    """Settings from the environment and every problem with them, one line each
    (``AUTHSVC_X: why``). With problems, the settings returned (if any) hold defaults or
    placeholders for the fields named in the third item: use them only to check what does
    not depend on those fields."""
    overrides: dict[str, Any] = dict(fixed)
    problems: list[str] = []
    for _ in range(len(Settings.model_fields) + 1):
        try:
            settings = Settings(**overrides)
        except ValidationError as exc:
            progressed = False
            for error in exc.errors():
                loc = error.get("loc") or ()
                message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
                if loc and str(loc[0]) in Settings.model_fields:
                    field = str(loc[0])
                    line = f"{env_name(field)}: {message}"
                    replacement = _default(Settings.model_fields[field])
                else:
                    # A model-level check names the setting itself: "AUTHSVC_X is required".
                    field = _field_of(message) or ""
                    name, _, rest = message.partition(" ")
                    line = f"{name}: {rest}" if field else f"configuration: {message}"
                    replacement = (
                        _PLACEHOLDERS.get(field, _default(Settings.model_fields[field]))
                        if field
                        else None
                    )
                if line not in problems:
                    problems.append(line)
                if field and field not in fixed and overrides.get(field, object()) != replacement:
                    overrides[field] = replacement
                    progressed = True
            if not progressed:
                break
            continue
        return settings, problems, set(overrides) - set(fixed)
    return None, problems, set(overrides) - set(fixed)


# -- dependencies ------------------------------------------------------------------------


def _database(settings: Settings) -> tuple[Result, Result]:
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from authsvc import migrate
    from authsvc.db import Database

    where = make_url(settings.database_url).render_as_string(hide_password=True)
    db = Database(
        settings.database_url,
        pool_size=1,
        max_overflow=0,
        pool_timeout=settings.db_pool_timeout,
        pool_pre_ping=False,
        connect_timeout=settings.db_connect_timeout,
    )
    try:
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            database = Result("database", True, where)
            try:
                state = migrate.schema_state(conn)
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                return database, Result("migrations", False, _reason(exc))
            if state.behind:
                return database, Result(
                    "migrations", False, f"{state.describe()}: run `authsvc migrate`"
                )
            return database, Result("migrations", True, state.describe())
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        failed = Result("database", False, f"{where}: {_reason(exc)}")
        return failed, Result("migrations", False, "not checked: the database is unreachable")
    finally:
        db.dispose()


def _redis(settings: Settings) -> Result:
    import redis

    assert settings.redis_url is not None
    client = redis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.ping()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        return Result("redis", False, _reason(exc))
    finally:
        client.close()
    return Result("redis", True)


def _cognito(settings: Settings) -> Iterator[Result]:
    from authsvc.cognito.gateway import make_client

    # One attempt each: a start-up report must not wait out the retry budget.
    client = make_client(settings, max_attempts=1)
    pool_id, client_id = settings.cognito_user_pool_id, settings.cognito_client_id
    try:
        pool = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        yield Result("cognito pool", False, f"{pool_id}: {_reason(exc)}")
        yield Result("cognito client", False, "not checked: the pool is unreachable")
        return
    yield Result("cognito pool", True, f"{pool_id} ({pool.get('Name', '?')})")
    try:
        app = client.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)[
            "UserPoolClient"
        ]
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        yield Result("cognito client", False, f"{client_id}: {_reason(exc)}")
        return
    actual = app.get("ClientSecret")
    configured = settings.client_secret
    if actual and not configured:
        yield Result(
            "cognito client",
            False,
            f"{client_id} has a client secret: set AUTHSVC_COGNITO_CLIENT_SECRET",
        )
    elif configured and not actual:
        yield Result(
            "cognito client",
            False,
            f"{client_id} has no client secret: unset AUTHSVC_COGNITO_CLIENT_SECRET",
        )
    elif configured and actual and not hmac.compare_digest(configured, actual):
        yield Result(
            "cognito client",
            False,
            f"{client_id}: AUTHSVC_COGNITO_CLIENT_SECRET does not match the app client's secret",
        )
    elif "ALLOW_USER_PASSWORD_AUTH" not in app.get("ExplicitAuthFlows", []):
        yield Result(
            "cognito client", False, f"{client_id} does not allow ALLOW_USER_PASSWORD_AUTH"
        )
    else:
        secret = "secret matches" if actual else "no secret"
        yield Result("cognito client", True, f"{client_id} ({secret})")


def _email(settings: Settings) -> Result:
    backend = settings.email_backend
    if backend == "console":
        # Not a failure (dev and tests use it), but say what it means.
        return Result("email", True, "console: emails are logged, not delivered")
    if backend == "smtp":
        return _smtp(settings)
    return _ses(settings)


def _smtp(settings: Settings) -> Result:
    where = f"smtp {settings.smtp_host}:{settings.smtp_port}"
    try:
        if settings.smtp_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                settings.smtp_host,
                settings.smtp_port,
                timeout=5,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=5)
        with client:
            code, _ = client.ehlo()
            if code != 250:
                return Result("email", False, f"{where}: EHLO answered {code}")
            if settings.smtp_starttls and not settings.smtp_ssl and not client.has_extn("starttls"):
                return Result(
                    "email",
                    False,
                    f"{where}: no STARTTLS (set AUTHSVC_SMTP_STARTTLS=false only on a"
                    " trusted network)",
                )
    except (OSError, smtplib.SMTPException) as exc:
        return Result("email", False, f"{where}: {_reason(exc)}")
    return Result("email", True, where)


def _ses(settings: Settings) -> Result:
    from botocore.config import Config

    from authsvc.cognito.gateway import new_client

    address = parseaddr(settings.email_from)[1]
    domain = address.rpartition("@")[2]
    kwargs: dict[str, Any] = {
        "region_name": settings.ses_region or settings.cognito_region,
        "config": Config(
            retries={"mode": "standard", "total_max_attempts": 1},
            connect_timeout=3,
            read_timeout=5,
        ),
    }
    if settings.ses_endpoint_url:
        kwargs["endpoint_url"] = settings.ses_endpoint_url
    client = new_client("sesv2", **kwargs)
    reasons = []
    for identity in (address, domain):
        try:
            found = client.get_email_identity(EmailIdentity=identity)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            reasons.append(f"{identity}: {_reason(exc)}")
            continue
        # SES sets both once the identity is verified; moto 5 leaves VerifiedForSendingStatus
        # false on a SUCCESS identity, so either one counts.
        if found.get("VerifiedForSendingStatus") or found.get("VerificationStatus") == "SUCCESS":
            return Result("email", True, f"ses identity {identity} verified for sending")
        reasons.append(f"{identity}: not verified for sending")
    return Result("email", False, "ses: " + "; ".join(reasons))


def _reason(exc: BaseException) -> str:
    """A short cause that never echoes a secret: the AWS error code or the exception type
    plus its first line (driver messages name hosts and databases, not passwords)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        code = response.get("Error", {}).get("Code")
        if code:
            return str(code)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {first}"[:300] if first else type(exc).__name__


# Which settings each dependency check relies on: when one of them is broken, the check
# would only test a placeholder, so it is reported as not checked.
_NEEDS: dict[str, tuple[str, ...]] = {
    "database": ("database_url", "db_connect_timeout", "db_pool_timeout"),
    "redis": ("redis_url",),
    "cognito": (
        "cognito_region",
        "cognito_user_pool_id",
        "cognito_client_id",
        "cognito_client_secret",
        "cognito_endpoint_url",
        "cognito_connect_timeout",
        "cognito_read_timeout",
    ),
    "email": ("email_backend", "email_from", "smtp_host", "smtp_port", "smtp_ssl", "ses_region"),
}


def dependency_checks(settings: Settings, broken: Collection[str] = ()) -> Iterator[Result]:
    """Each dependency, one Result per check, in a fixed order."""

    def blocked(group: str) -> str | None:
        names = sorted(env_name(f) for f in _NEEDS[group] if f in broken)
        return f"not checked: fix {', '.join(names)}" if names else None

    why = blocked("database")
    if why:
        yield Result("database", False, why)
        yield Result("migrations", False, why)
    else:
        yield from _database(settings)
    if settings.redis_url or "redis_url" in broken:
        why = blocked("redis")
        yield Result("redis", False, why) if why else _redis(settings)
    why = blocked("cognito")
    if why:
        yield Result("cognito pool", False, why)
        yield Result("cognito client", False, why)
    else:
        yield from _cognito(settings)
    why = blocked("email")
    yield Result("email", False, why) if why else _email(settings)


def run(emit: Callable[[Result], None], **fixed: Any) -> tuple[Settings | None, bool]:
    """Every check, each handed to ``emit`` as soon as it is known. Returns the settings
    (None when the configuration has problems) and whether every check passed."""
    settings, problems, broken = load_settings(**fixed)
    for problem in problems:
        emit(Result("configuration", False, problem))
    if not problems:
        emit(Result("configuration", True))
    ok = not problems
    if settings is not None:
        for result in dependency_checks(settings, broken):
            ok = ok and result.ok
            emit(result)
    return (None if problems else settings), ok
