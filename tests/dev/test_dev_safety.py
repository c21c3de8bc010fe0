"""Dev mode stays on the developer's machine (issue 11): `authsvc dev` listens on loopback
unless told `--unsafe-public`, `authsvc serve` never runs in dev mode whatever the
environment says, and the dev SQLite file and key are readable by their owner only."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from authsvc import cli, migrate
from authsvc.config import serve_settings
from authsvc.main import create_app_from_env

pytestmark = pytest.mark.slow

AUTHSVC = Path(sys.executable).with_name("authsvc")
SECRET_KEY = "dev-safety-test-secret-key-0123456789"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    base_url: str
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path


def _start(args: list[str], env: dict[str, str], work: Path, port: int) -> Server:
    stdout, stderr = work / "stdout.txt", work / "stderr.txt"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen([str(AUTHSVC), *args], env=env, cwd=work, stdout=out, stderr=err)
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, f"exited {process.returncode}: {stderr.read_text()}"
            try:
                if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                    return Server(base_url, process, stdout, stderr)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"never got ready: {stderr.read_text()}")
    except BaseException:
        _stop(process)
        raise


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


# --------------------------------------------------------------------------- --host


class TestDevHost:
    @pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost"])
    def test_loopback_hosts(self, host):
        assert cli._is_loopback(host)

    @pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.7", "example.com", "10.0.0.1"])
    def test_other_hosts(self, host):
        assert not cli._is_loopback(host)

    def test_public_host_is_refused(self, tmp_path):
        done = subprocess.run(
            [
                str(AUTHSVC),
                "dev",
                "--host",
                "0.0.0.0",
                "--port",
                str(_free_port()),
                "--data-dir",
                str(tmp_path / "data"),
            ],
            env=_env(),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stdout + done.stderr
        assert "--unsafe-public" in done.stderr
        assert "0.0.0.0" in done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "data").exists()  # refused before anything was created


@pytest.fixture(scope="module")
def public_dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("public-dev")
    port = _free_port()
    args = [
        "dev",
        "--host",
        "0.0.0.0",
        "--unsafe-public",
        "--port",
        str(port),
        "--data-dir",
        str(work / "data"),
    ]
    server = _start(args, _env(PYTHONUNBUFFERED="1"), work, port)
    try:
        yield server
    finally:
        _stop(server.process)


class TestUnsafePublic:
    def test_starts_with_a_warning_in_the_banner(self, public_dev):
        banner = public_dev.stdout.read_text()
        assert "WARNING: --unsafe-public" in banner
        assert "/dev/outbox" in banner
        assert httpx.get(f"{public_dev.base_url}/dev/outbox").status_code == 200

    def test_database_and_key_are_private(self, public_dev):
        data = public_dev.stdout.parent / "data"
        assert stat.S_IMODE((data / "authsvc.db").stat().st_mode) == 0o600
        assert stat.S_IMODE((data / "secret_key").stat().st_mode) == 0o600
        assert stat.S_IMODE(data.stat().st_mode) == 0o700


def test_existing_database_is_tightened(tmp_path):
    from authsvc.dev.runner import private_file

    path = tmp_path / "authsvc.db"
    path.write_bytes(b"kept")
    path.chmod(0o644)
    private_file(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_bytes() == b"kept"


# --------------------------------------------------------------------------- serve


def _serve_env(cognito, database_url: str, **extra: str) -> dict[str, str]:
    return _env(
        AUTHSVC_COGNITO_REGION=cognito.pool.region,
        AUTHSVC_COGNITO_USER_POOL_ID=cognito.pool.user_pool_id,
        AUTHSVC_COGNITO_CLIENT_ID=cognito.pool.client_id,
        AUTHSVC_COGNITO_ENDPOINT_URL=cognito.endpoint_url,
        AUTHSVC_DATABASE_URL=database_url,
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION=cognito.pool.region,
        **extra,
    )


class TestServeIsNeverDevMode:
    def test_settings_ignore_the_environment(self, cognito, monkeypatch):
        for key, value in _serve_env(cognito, "sqlite://", AUTHSVC_SECRET_KEY=SECRET_KEY).items():
            if key.startswith("AUTHSVC_"):
                monkeypatch.setenv(key, value)
        monkeypatch.setenv("AUTHSVC_DEV_MODE", "true")
        assert serve_settings().dev_mode is False
        app = create_app_from_env()
        assert app.state.authsvc.settings.dev_mode is False
        assert app.state.authsvc.outbox is None
        assert not any(getattr(r, "path", "").startswith("/dev") for r in app.routes)

    def test_serve_with_dev_mode_env_still_needs_a_secret_key(self, cognito, tmp_path):
        env = _serve_env(cognito, f"sqlite:///{tmp_path / 'x.db'}", AUTHSVC_DEV_MODE="true")
        done = subprocess.run(
            [str(AUTHSVC), "serve", "--port", str(_free_port())],
            env=env,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 2, done.stderr
        assert "AUTHSVC_SECRET_KEY" in done.stderr

    def test_serve_with_dev_mode_env_has_no_dev_routes(self, cognito, tmp_path):
        database_url = f"sqlite:///{tmp_path / 'serve.db'}"
        migrate.upgrade(database_url)
        port = _free_port()
        env = _serve_env(
            cognito,
            database_url,
            AUTHSVC_SECRET_KEY=SECRET_KEY,
            AUTHSVC_DEV_MODE="true",
            AUTHSVC_WORKERS="1",
        )
        server = _start(["serve", "--port", str(port)], env, tmp_path, port)
        try:
            for path in ("/dev/outbox", "/dev/spa/"):
                assert httpx.get(f"{server.base_url}{path}").status_code == 404, path
        finally:
            _stop(server.process)
        assert "AUTHSVC_DEV_MODE is ignored" in server.stderr.read_text()
