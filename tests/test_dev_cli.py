"""The `authsvc` command line, run as a subprocess: `dev`, `openapi`, `migrate`."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from alembic.script import ScriptDirectory
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, inspect, text

import authsvc.models  # noqa: F401  (registers every table on Base.metadata)
from authsvc import migrate
from authsvc.config import Settings
from authsvc.db import Base
from authsvc.main import create_app

pytestmark = pytest.mark.slow

AUTHSVC = Path(sys.executable).with_name("authsvc")
ADMIN_PASSWORD = "Dev-Adm1n-Passw0rd!"
PASSWORD = "Passw0rd!"

# DESIGN §3, both tables: (method, path). Path parameters are compared by position only.
DESIGN_ROUTES = {
    ("POST", "/v1/auth/sign-up"),
    ("POST", "/v1/auth/sign-up/confirm"),
    ("POST", "/v1/auth/sign-up/resend"),
    ("POST", "/v1/auth/sign-in"),
    ("POST", "/v1/auth/challenge"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/sign-out"),
    ("POST", "/v1/auth/password/forgot"),
    ("POST", "/v1/auth/password/reset"),
    ("GET", "/v1/auth/session"),
    ("POST", "/v1/auth/directory/sign-in"),
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("POST", "/v1/me/mfa/totp"),
    ("POST", "/v1/me/mfa/totp/verify"),
    ("DELETE", "/v1/me/mfa/totp"),
    ("POST", "/v1/invitations"),
    ("GET", "/v1/invitations"),
    ("GET", "/v1/invitations/{id}"),
    ("POST", "/v1/invitations/{id}/resend"),
    ("DELETE", "/v1/invitations/{id}"),
    ("POST", "/v1/invitations/lookup"),
    ("POST", "/v1/invitations/accept"),
    ("GET", "/v1/admin/users"),
    ("GET", "/v1/admin/users/{username}"),
    ("PATCH", "/v1/admin/users/{username}"),
    ("DELETE", "/v1/admin/users/{username}"),
    ("POST", "/v1/admin/users/{username}/password"),
    ("POST", "/v1/admin/users/{username}/disable"),
    ("POST", "/v1/admin/users/{username}/enable"),
    ("POST", "/v1/admin/users/{username}/sign-out"),
    ("PUT", "/v1/admin/users/{username}/groups/{group}"),
    ("DELETE", "/v1/admin/users/{username}/groups/{group}"),
    ("DELETE", "/v1/admin/users/{username}/mfa"),
    ("GET", "/v1/admin/audit-events"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/dev/outbox"),
    ("GET", "/v1/auth/federation/providers"),
    ("POST", "/v1/auth/federation/{provider}/start"),
    ("GET", "/v1/auth/federation/callback"),
    ("POST", "/v1/auth/federation/exchange"),
    ("POST", "/v1/auth/federation/token"),
    ("POST", "/v1/me/aws-credentials"),
}
# Implemented when these tests were written: they must stay in the document.
IMPLEMENTED = {
    ("POST", "/v1/auth/sign-up"),
    ("POST", "/v1/auth/sign-up/confirm"),
    ("POST", "/v1/auth/sign-up/resend"),
    ("POST", "/v1/auth/sign-in"),
    ("POST", "/v1/auth/challenge"),
    ("POST", "/v1/auth/refresh"),
    ("POST", "/v1/auth/sign-out"),
    ("POST", "/v1/auth/password/forgot"),
    ("POST", "/v1/auth/password/reset"),
    ("GET", "/v1/auth/session"),
    ("GET", "/v1/me"),
    ("PATCH", "/v1/me"),
    ("POST", "/v1/me/password"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
}
HTTP_METHODS = {"get", "put", "post", "patch", "delete"}


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


DESIGN_SHAPES = {(m, _shape(p)) for m, p in DESIGN_ROUTES}


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- authsvc dev


@dataclass
class DevServer:
    base_url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    ready_after: float


def _start_dev(work: Path) -> DevServer:
    """Start `authsvc dev` and wait for /healthz (up to 60 s; tests assert the 10 s)."""
    port = _free_port()
    stdout, stderr = work / "stdout.txt", work / "stderr.txt"
    started = time.monotonic()
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [str(AUTHSVC), "dev", "--port", str(port), "--data-dir", str(work / "data")],
            env=_env(AUTHSVC_DEV_ADMIN_PASSWORD=ADMIN_PASSWORD, PYTHONUNBUFFERED="1"),
            cwd=work,
            stdout=out,
            stderr=err,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        while time.monotonic() < started + 60:
            assert process.poll() is None, (
                f"authsvc dev exited with {process.returncode}: {stderr.read_text()}"
            )
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    return DevServer(base_url, process, stdout, stderr, time.monotonic() - started)
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"authsvc dev never got ready: {stderr.read_text()}")
    except BaseException:
        _kill(process)
        raise


def _kill(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = _start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        _kill(server.process)


def test_dev_becomes_ready(dev_server: DevServer) -> None:
    # How fast is measured by `make bench` (tests never assert timings); here: it comes up
    # by itself and answers. The fixture gives up after a generous bound.
    assert dev_server.ready_after > 0
    response = httpx.get(f"{dev_server.base_url}/healthz")
    assert response.json() == {"status": "ok"}


def test_dev_banner(dev_server: DevServer) -> None:
    banner = dev_server.stdout.read_text()
    assert f"{dev_server.base_url}/docs" in banner
    assert f"{dev_server.base_url}/dev/outbox" in banner
    assert "admin@example.com" in banner
    # The configured password is not echoed (only a generated one is printed).
    assert ADMIN_PASSWORD not in banner


def test_dev_docs_are_served(dev_server: DevServer) -> None:
    assert httpx.get(f"{dev_server.base_url}/docs").status_code == 200
    document = httpx.get(f"{dev_server.base_url}/openapi.json").json()
    assert "/v1/auth/sign-in" in document["paths"]


def test_dev_person_flow_over_http(dev_server: DevServer) -> None:
    email = f"person-{uuid.uuid4().hex[:10]}@example.com"
    with httpx.Client(base_url=dev_server.base_url, timeout=10) as http:
        response = http.post(
            "/v1/auth/sign-up",
            json={"email": email, "password": PASSWORD, "given_name": "Pat", "family_name": "Doe"},
        )
        assert response.status_code == 202, response.text

        outbox = http.get("/dev/outbox")
        assert outbox.status_code == 200
        messages = [m for m in outbox.json() if m["to"] == email and m["kind"] == "sign_up_code"]
        assert len(messages) == 1, outbox.json()
        code = messages[0]["code"]
        assert re.fullmatch(r"\d{6}", code)

        wrong = "000000" if code != "000000" else "111111"
        response = http.post("/v1/auth/sign-up/confirm", json={"email": email, "code": wrong})
        assert response.status_code == 400 and response.json()["code"] == "invalid_code"
        response = http.post("/v1/auth/sign-up/confirm", json={"email": email, "code": code})
        assert response.status_code == 204, response.text

        response = http.post("/v1/auth/sign-in", json={"email": email, "password": PASSWORD})
        assert response.status_code == 200, response.text
        tokens = response.json()
        assert tokens["kind"] == "tokens"

        me = http.get("/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text
        profile = me.json()
        assert profile["email"] == email
        assert profile["given_name"] == "Pat"
        assert profile["family_name"] == "Doe"
        assert profile["email_verified"] is True
    # The dev outbox line is the one place a code may be printed.
    assert code in dev_server.stdout.read_text()


def test_dev_seeded_admin(dev_server: DevServer) -> None:
    with httpx.Client(base_url=dev_server.base_url, timeout=10) as http:
        response = http.post(
            "/v1/auth/sign-in", json={"email": "admin@example.com", "password": ADMIN_PASSWORD}
        )
        assert response.status_code == 200, response.text
        access = response.json()["access_token"]
        session = http.get("/v1/auth/session", headers={"Authorization": f"Bearer {access}"})
        assert session.status_code == 200, session.text
        assert "admin" in session.json()["groups"]
        wrong = http.post(
            "/v1/auth/sign-in", json={"email": "admin@example.com", "password": PASSWORD}
        )
        assert wrong.status_code == 401


def test_dev_data_dir_holds_the_database(dev_server: DevServer) -> None:
    data = Path(dev_server.stdout).parent / "data"
    engine = create_engine(f"sqlite:///{data / 'authsvc.db'}")
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) <= tables
    assert version is not None


def test_dev_exits_cleanly_on_sigterm(dev_server: DevServer) -> None:
    # Runs last in this module (file order): it stops the shared server.
    dev_server.process.send_signal(signal.SIGTERM)
    started = time.monotonic()
    returncode = dev_server.process.wait(timeout=10)
    assert time.monotonic() - started < 10
    assert returncode == 0, dev_server.stderr.read_text()
    errors = dev_server.stderr.read_text() + dev_server.stdout.read_text()
    assert "Traceback" not in errors
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{dev_server.base_url}/healthz", timeout=1)


def test_dev_exits_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    # What a person does after `make run`: no KeyboardInterrupt traceback, exit status 0.
    server = _start_dev(tmp_path)
    try:
        server.process.send_signal(signal.SIGINT)
        returncode = server.process.wait(timeout=10)
    finally:
        _kill(server.process)
    assert returncode == 0, server.stderr.read_text()
    assert "Traceback" not in server.stderr.read_text()
    assert "KeyboardInterrupt" not in server.stderr.read_text()


# --------------------------------------------------------------------------- authsvc openapi


@pytest.fixture(scope="module")
def openapi_document(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    result = subprocess.run(
        [str(AUTHSVC), "openapi"],
        env=_env(),
        cwd=tmp_path_factory.mktemp("openapi"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), _shape(path))
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def test_openapi_is_json_with_sign_in(openapi_document: dict[str, Any]) -> None:
    assert openapi_document["openapi"].startswith("3.")
    assert "/v1/auth/sign-in" in openapi_document["paths"]
    assert "post" in openapi_document["paths"]["/v1/auth/sign-in"]


def test_openapi_lists_every_implemented_design_route(openapi_document: dict[str, Any]) -> None:
    routes = _routes(openapi_document)
    assert {(m, _shape(p)) for m, p in IMPLEMENTED} <= DESIGN_SHAPES
    missing = {(m, _shape(p)) for m, p in IMPLEMENTED} - routes
    assert not missing, f"routes missing from `authsvc openapi`: {sorted(missing)}"


def _example_path(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "00000000-0000-4000-8000-000000000000", path)


def test_openapi_lists_every_route_the_app_serves(openapi_document: dict[str, Any]) -> None:
    # "Exists so far" is decided black-box: the production app answers an anonymous,
    # empty request on the route with something other than 404/405 (401, 422, ...).
    app = create_app(
        Settings(
            cognito_user_pool_id="us-east-1_example",
            cognito_client_id="example",
            cognito_endpoint_url="http://127.0.0.1:9",
            cognito_max_attempts=1,
            database_url="sqlite://",
            secret_key="x" * 32,
        )
    )
    client = TestClient(app, raise_server_exceptions=False)
    existing = set()
    for method, path in sorted(DESIGN_ROUTES):
        kwargs: dict[str, Any] = {} if method in {"GET", "DELETE"} else {"json": {}}
        response = client.request(method, _example_path(path), **kwargs)
        if response.status_code not in (404, 405):
            existing.add((method, _shape(path)))
    assert ("POST", "/v1/auth/sign-in") in existing
    assert {(m, _shape(p)) for m, p in IMPLEMENTED} <= existing
    missing = existing - _routes(openapi_document)
    assert not missing, f"served but missing from `authsvc openapi`: {sorted(missing)}"
    # ... and the probe is not fooled: a route that does not exist gives 404.
    assert client.get("/v1/no-such-route").status_code == 404


def test_openapi_has_only_design_routes(openapi_document: dict[str, Any]) -> None:
    extra = _routes(openapi_document) - DESIGN_SHAPES
    assert not extra, f"routes not in DESIGN §3: {sorted(extra)}"
    # The production document has no dev-only route.
    assert "/dev/outbox" not in openapi_document["paths"]


def test_openapi_documents_problem_responses(openapi_document: dict[str, Any]) -> None:
    for path, item in openapi_document["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            errors = {
                status: response
                for status, response in operation["responses"].items()
                if status[0] in "45"
            }
            assert errors, f"{method.upper()} {path} documents no error response"
            for status, response in errors.items():
                assert "application/problem+json" in response.get("content", {}), (
                    method,
                    path,
                    status,
                )


# --------------------------------------------------------------------------- authsvc migrate


def test_migrate_creates_the_tables(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "migrated.db"
    url = f"sqlite:///{database}"
    result = subprocess.run(
        [str(AUTHSVC), "migrate", "--database-url", url],
        env=_env(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert database.is_file()
    engine = create_engine(url)
    try:
        tables = set(inspect(engine).get_table_names())
        with engine.connect() as conn:
            version = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
    finally:
        engine.dispose()
    assert set(Base.metadata.tables) | {"alembic_version"} == tables
    heads = ScriptDirectory.from_config(migrate.alembic_config(url)).get_heads()
    assert [version] == heads


def test_migrate_downgrade_to_base(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'down.db'}"
    for args in (
        ["migrate", "--database-url", url],
        ["migrate", "--database-url", url, "--downgrade", "base"],
    ):
        result = subprocess.run(
            [str(AUTHSVC), *args],
            env=_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
    engine = create_engine(url)
    try:
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
    finally:
        engine.dispose()
