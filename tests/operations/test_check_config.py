"""Issue 16 item 6: `authsvc check-config` reports every configuration problem at once,
then reaches each dependency (one line per check, ok or FAIL with the reason)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from authsvc import migrate
from tests.conftest import Emulator
from tests.operations.support import env_for, free_port, run

pytestmark = pytest.mark.slow


def _lines(stdout: str) -> dict[str, list[str]]:
    """check name -> its lines ("ok  name: detail" / "FAIL name: detail")."""
    found: dict[str, list[str]] = {}
    for line in stdout.splitlines():
        status, _, rest = line.partition(" ")
        assert status in {"ok", "FAIL"}, line
        name = rest.strip().split(":", 1)[0]
        found.setdefault(name, []).append(line)
    return found


class _Sink:
    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        return "250 OK"


@pytest.fixture
def smtp_port() -> Iterator[int]:
    port = free_port()
    controller = Controller(_Sink(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def test_every_configuration_problem_at_once(tmp_path: Path) -> None:
    env = env_for(workers="many", cors_origins="*", jwt_leeway_seconds="-1")
    result = run("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 1, result
    config = _lines(result.stdout)["configuration"]
    named = [line.split(":")[1].strip() for line in config]
    assert sorted(named) == sorted(
        [
            "AUTHSVC_WORKERS",
            "AUTHSVC_CORS_ORIGINS",
            "AUTHSVC_JWT_LEEWAY_SECONDS",
            "AUTHSVC_COGNITO_USER_POOL_ID",
            "AUTHSVC_COGNITO_CLIENT_ID",
            "AUTHSVC_SECRET_KEY",
        ]
    ), result.stdout
    assert all(line.startswith("FAIL configuration: AUTHSVC_") for line in config)
    assert "Traceback" not in result.stderr


def test_a_secret_value_is_never_echoed(tmp_path: Path) -> None:
    env = env_for(secret_key="short-secret", cognito_client_id="x", cognito_user_pool_id="a_b")
    result = run("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 1
    assert "short-secret" not in result.stdout + result.stderr
    assert "FAIL configuration: AUTHSVC_SECRET_KEY:" in result.stdout


def test_everything_reachable_is_ok(
    tmp_path: Path, cognito: Emulator, empty_database: str, smtp_port: int
) -> None:
    migrate.upgrade(empty_database)
    env = env_for(
        cognito,
        database_url=empty_database,
        redis_url="redis://127.0.0.1:6379/0",
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=str(smtp_port),
        smtp_starttls="false",
    )
    result = run("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    checks = _lines(result.stdout)
    assert list(checks) == [
        "configuration",
        "database",
        "migrations",
        "redis",
        "cognito pool",
        "cognito client",
        "email",
    ]
    assert all(lines[0].startswith("ok") for lines in checks.values()), result.stdout
    assert "secret matches" in checks["cognito client"][0] or not cognito.pool.client_secret
    assert "at head" in checks["migrations"][0]


def test_each_failing_dependency_is_named(
    tmp_path: Path, cognito: Emulator, empty_database: str
) -> None:
    env = env_for(
        cognito,
        database_url=empty_database,  # never migrated
        redis_url=f"redis://127.0.0.1:{free_port()}/0",  # nothing listens
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=str(free_port()),
        cognito_client_secret="not-the-clients-secret",
    )
    result = run("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 1, result
    checks = _lines(result.stdout)
    assert checks["configuration"] == ["ok   configuration"]
    assert checks["database"][0].startswith("ok")
    assert checks["migrations"][0].startswith("FAIL migrations: migrations behind (current none")
    assert "authsvc migrate" in checks["migrations"][0]
    assert checks["redis"][0].startswith("FAIL redis: ConnectionError")
    assert checks["cognito pool"][0].startswith("ok")
    client_line = checks["cognito client"][0]
    assert client_line.startswith("FAIL"), client_line
    if cognito.pool.client_secret:
        assert "does not match" in client_line
    else:
        assert "has no client secret" in client_line
    assert "not-the-clients-secret" not in result.stdout
    assert checks["email"][0].startswith("FAIL email: smtp 127.0.0.1:")


def test_an_unknown_pool_and_unreachable_database(tmp_path: Path, cognito: Emulator) -> None:
    env = env_for(
        cognito,
        cognito_user_pool_id=f"{cognito.pool.region}_doesnotexist",
        database_url=f"postgresql://postgres@127.0.0.1:{free_port()}/none",
    )
    result = run("check-config", env=env, cwd=tmp_path)
    assert result.returncode == 1
    checks = _lines(result.stdout)
    assert checks["database"][0].startswith("FAIL database: postgresql")
    assert checks["migrations"][0] == ("FAIL migrations: not checked: the database is unreachable")
    assert checks["cognito pool"][0].startswith(
        f"FAIL cognito pool: {cognito.pool.region}_doesnotexist: ResourceNotFoundException"
    )
    assert checks["cognito client"][0].startswith("FAIL cognito client: not checked")


def test_ses_identity(tmp_path: Path, cognito: Emulator) -> None:
    import boto3

    ses = boto3.client(
        "sesv2",
        endpoint_url=cognito.endpoint_url,
        region_name=cognito.pool.region,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",  # noqa: S106
    )
    domain = f"verified-{free_port()}.example.com"
    ses.create_email_identity(EmailIdentity=domain)
    base = {
        "database_url": f"sqlite:///{tmp_path / 'x.db'}",
        "email_backend": "ses",
        "ses_endpoint_url": cognito.endpoint_url,
        "ses_region": cognito.pool.region,
    }
    good = run(
        "check-config",
        env=env_for(cognito, email_from=f"authsvc <no-reply@{domain}>", **base),
        cwd=tmp_path,
    )
    assert _lines(good.stdout)["email"][0].startswith("ok   email: ses identity"), good.stdout
    bad = run(
        "check-config",
        env=env_for(cognito, email_from="authsvc <no-reply@unknown.example.org>", **base),
        cwd=tmp_path,
    )
    assert _lines(bad.stdout)["email"][0].startswith("FAIL email: ses:"), bad.stdout
