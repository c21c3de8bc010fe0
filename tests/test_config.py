"""Settings (DESIGN §6): validation, derived values, and how bad configuration fails."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError
from sqlalchemy import text

from authsvc.config import Settings
from authsvc.db import Database, make_engine, normalise_url
from authsvc.main import create_app
from tests.conftest import make_settings

AUTHSVC = Path(sys.executable).with_name("authsvc")
POOL = "us-east-1_AbCdEf123"
REQUIRED = {
    "AUTHSVC_COGNITO_USER_POOL_ID": POOL,
    "AUTHSVC_COGNITO_CLIENT_ID": "clientid123",
    "AUTHSVC_SECRET_KEY": "0123456789abcdef0123456789abcdef",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AUTHSVC_* from the developer's shell may leak into these tests."""
    for name in list(os.environ):
        if name.startswith("AUTHSVC_"):
            monkeypatch.delenv(name)


def settings(**values: Any) -> Settings:
    base: dict[str, Any] = {
        "cognito_user_pool_id": POOL,
        "cognito_client_id": "clientid123",
        "secret_key": REQUIRED["AUTHSVC_SECRET_KEY"],
    }
    base.update(values)
    return Settings(**base)


def run_authsvc(
    *args: str, env_extra: dict[str, str] | None = None, cwd: Path
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(env_extra or {})
    return subprocess.run(
        [str(AUTHSVC), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


# --------------------------------------------------------------------------- start-up failures


def test_the_authsvc_script_exists() -> None:
    assert AUTHSVC.is_file(), f"{AUTHSVC} missing: is the package installed in the venv?"


def test_serve_with_nothing_set_fails_with_one_line_per_problem(tmp_path: Path) -> None:
    # Issue 16: every problem at once, not one per attempt.
    result = run_authsvc("serve", "--port", "1", cwd=tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert [line.split(":")[1].strip() for line in lines] == ["configuration error"] * 3, lines
    named = [line.split(":")[2].strip() for line in lines]
    assert named == [
        "AUTHSVC_COGNITO_USER_POOL_ID",
        "AUTHSVC_COGNITO_CLIENT_ID",
        "AUTHSVC_SECRET_KEY",
    ], lines
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("extra", "setting"),
    [
        ({"AUTHSVC_COGNITO_CLIENT_ID": ""}, "AUTHSVC_COGNITO_CLIENT_ID"),
        ({"AUTHSVC_COGNITO_USER_POOL_ID": "nounderscore"}, "AUTHSVC_COGNITO_USER_POOL_ID"),
        ({"AUTHSVC_CORS_ORIGINS": "*"}, "AUTHSVC_CORS_ORIGINS"),
        ({"AUTHSVC_CORS_ORIGINS": "https://a.example,*"}, "AUTHSVC_CORS_ORIGINS"),
        ({"AUTHSVC_CORS_ORIGINS": "[not json"}, "AUTHSVC_CORS_ORIGINS"),
        ({"AUTHSVC_WORKERS": "many"}, "AUTHSVC_WORKERS"),
        ({"AUTHSVC_WORKERS": "0"}, "AUTHSVC_WORKERS"),
        ({"AUTHSVC_PUBLIC_APP_URL": "app.example.com"}, "AUTHSVC_PUBLIC_APP_URL"),
        ({"AUTHSVC_EMAIL_BACKEND": "carrier-pigeon"}, "AUTHSVC_EMAIL_BACKEND"),
        ({"AUTHSVC_JWT_LEEWAY_SECONDS": "-1"}, "AUTHSVC_JWT_LEEWAY_SECONDS"),
    ],
    ids=lambda value: value if isinstance(value, str) else next(iter(value.values())) or "empty",
)
def test_bad_setting_fails_at_start_naming_it(
    tmp_path: Path, extra: dict[str, str], setting: str
) -> None:
    result = run_authsvc("serve", "--port", "1", env_extra={**REQUIRED, **extra}, cwd=tmp_path)
    assert result.returncode == 2, result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"authsvc: configuration error: {setting}:"), lines
    assert "Traceback" not in result.stderr


def test_secret_values_are_not_echoed_in_the_error(tmp_path: Path) -> None:
    secret = "short-secret"  # < 16 characters: refused
    result = run_authsvc(
        "serve", env_extra={**REQUIRED, "AUTHSVC_SECRET_KEY": secret}, cwd=tmp_path
    )
    assert result.returncode == 2
    assert result.stderr.startswith("authsvc: configuration error: AUTHSVC_SECRET_KEY")
    assert secret not in result.stderr


def test_migrate_without_a_database_url_fails_with_one_line(tmp_path: Path) -> None:
    result = run_authsvc("migrate", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "authsvc: configuration error: AUTHSVC_DATABASE_URL: is required"
    ]


# --------------------------------------------------------------------------- validation


def test_pool_id_required() -> None:
    with pytest.raises(ValidationError, match="AUTHSVC_COGNITO_USER_POOL_ID"):
        settings(cognito_user_pool_id="")


def test_client_id_required() -> None:
    with pytest.raises(ValidationError, match="AUTHSVC_COGNITO_CLIENT_ID"):
        settings(cognito_client_id="")


def test_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUTHSVC_COGNITO_REGION", "eu-west-1")
    monkeypatch.setenv("AUTHSVC_ADMIN_GROUP", "operators")
    loaded = Settings()
    assert loaded.cognito_user_pool_id == POOL
    assert loaded.cognito_region == "eu-west-1"
    assert loaded.admin_group == "operators"
    assert loaded.dev_mode is False


@pytest.mark.parametrize("value", ["*", " * ", "https://a.example,*", '["*"]'])
def test_cors_wildcard_refused(value: str) -> None:
    with pytest.raises(ValidationError, match="not allowed"):
        settings(cors_origins=value)


def test_cors_wildcard_refused_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUTHSVC_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError) as caught:
        Settings()
    assert caught.value.errors()[0]["loc"] == ("cors_origins",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://a.example", ["https://a.example"]),
        ("https://a.example,https://b.example", ["https://a.example", "https://b.example"]),
        (
            " https://a.example , http://localhost:5173 ,",
            ["https://a.example", "http://localhost:5173"],
        ),
        ('["https://a.example", "https://b.example"]', ["https://a.example", "https://b.example"]),
        ("", []),
    ],
)
def test_cors_origins_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: list[str]
) -> None:
    for name, required in REQUIRED.items():
        monkeypatch.setenv(name, required)
    monkeypatch.setenv("AUTHSVC_CORS_ORIGINS", value)
    assert Settings().cors_origins == expected


def test_cors_origins_given_as_a_list() -> None:
    assert settings(cors_origins=["https://a.example"]).cors_origins == ["https://a.example"]


def test_cors_origins_reach_the_app(cognito, database_url) -> None:
    app_settings = make_settings(
        cognito, database_url, cors_origins="https://spa.example, https://admin.example"
    )
    with TestClient(create_app(app_settings)) as client:
        allowed = client.options(
            "/v1/auth/sign-in",
            headers={"Origin": "https://admin.example", "Access-Control-Request-Method": "POST"},
        )
        assert allowed.headers.get("access-control-allow-origin") == "https://admin.example"
        assert allowed.headers.get("access-control-allow-credentials") == "true"
        other = client.options(
            "/v1/auth/sign-in",
            headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
        )
        assert other.headers.get("access-control-allow-origin") is None


def test_public_app_url_trailing_slash_dropped() -> None:
    assert settings(public_app_url="https://app.example/").public_app_url == "https://app.example"


# --------------------------------------------------------------------------- derived values


def test_issuer() -> None:
    s = settings(cognito_region="eu-west-1", cognito_user_pool_id="eu-west-1_Xyz")
    assert s.issuer == "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Xyz"


def test_jwks_url_without_an_endpoint_is_the_issuers() -> None:
    s = settings(cognito_region="eu-west-1", cognito_user_pool_id="eu-west-1_Xyz")
    assert s.jwks_url == (
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_Xyz/.well-known/jwks.json"
    )


@pytest.mark.parametrize("endpoint", ["http://127.0.0.1:5000", "http://127.0.0.1:5000/"])
def test_jwks_url_derived_from_the_endpoint(endpoint: str) -> None:
    s = settings(cognito_endpoint_url=endpoint)
    assert s.jwks_url == f"http://127.0.0.1:5000/{POOL}/.well-known/jwks.json"
    # The issuer stays the real AWS form (what the emulator puts in tokens).
    assert s.issuer == f"https://cognito-idp.us-east-1.amazonaws.com/{POOL}"


def test_jwks_url_override_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in REQUIRED.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AUTHSVC_COGNITO_ENDPOINT_URL", "http://127.0.0.1:5000")
    monkeypatch.setenv("AUTHSVC_COGNITO_JWKS_URL", "https://keys.example/jwks.json")
    assert Settings().jwks_url == "https://keys.example/jwks.json"


def test_derived_jwks_url_is_where_the_emulator_serves_keys(cognito) -> None:
    s = make_settings(cognito, "sqlite://")
    response = httpx.get(s.jwks_url, timeout=5)
    assert response.status_code == 200
    assert "dummy" in {key["kid"] for key in response.json()["keys"]}


def test_client_secret_is_secret() -> None:
    s = settings(cognito_client_secret="s3cr3t-value")
    assert s.client_secret == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(s)
    assert settings().client_secret is None


# --------------------------------------------------------------------------- database URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql://u:p@db:5432/app", "postgresql+psycopg://u:p@db:5432/app"),
        ("postgresql+psycopg://u@db/app", "postgresql+psycopg://u@db/app"),
        ("sqlite:///x.db", "sqlite:///x.db"),
        ("sqlite://", "sqlite://"),
    ],
)
def test_normalise_url(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("scheme", ["postgres", "postgresql"])
def test_plain_postgres_urls_use_psycopg(scheme: str) -> None:
    engine = make_engine(f"{scheme}://postgres@127.0.0.1:5432/test")
    try:
        assert engine.dialect.name == "postgresql"
        assert engine.dialect.driver == "psycopg"
    finally:
        engine.dispose()


def test_postgres_url_connects(postgres_server: str) -> None:
    url = postgres_server.replace("postgresql+psycopg://", "postgres://")
    assert url.startswith("postgres://")
    db = Database(url)
    try:
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT 1")).scalar() == 1
    finally:
        db.dispose()


def test_app_runs_on_a_postgres_scheme_url(cognito, postgres_url: str) -> None:
    url = postgres_url.replace("postgresql+psycopg://", "postgres://")
    with TestClient(create_app(make_settings(cognito, url))) as client:
        response = client.get("/readyz")
        assert response.status_code == 200, response.text
        assert {c["name"]: c["status"] for c in response.json()["checks"]}["database"] == "ok"
