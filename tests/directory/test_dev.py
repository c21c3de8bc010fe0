"""`authsvc dev` with AUTHSVC_DEV_DIRECTORY=1: slapd with two people, the flow end to end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from authsvc.dev.directory import DEV_PEOPLE
from tests.directory.conftest import _need_slapd

pytestmark = pytest.mark.slow

AUTHSVC = Path(sys.executable).with_name("authsvc")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dev_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    _need_slapd()
    work = tmp_path_factory.mktemp("devdir")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(AUTHSVC_DEV_DIRECTORY="1", PYTHONUNBUFFERED="1")
    stdout = work / "stdout.txt"
    with stdout.open("wb") as out, (work / "stderr.txt").open("wb") as err:
        process = subprocess.Popen(
            [str(AUTHSVC), "dev", "--port", str(port), "--data-dir", str(work / "data")],
            env=env,
            cwd=work,
            stdout=out,
            stderr=err,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (work / "stderr.txt").read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, (work / "stderr.txt").read_text()
            time.sleep(0.1)
        yield base, stdout
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_banner_shows_the_directory(dev_url: tuple[str, Path]) -> None:
    _, stdout = dev_url
    banner = stdout.read_text()
    assert "Directory" in banner and "/v1/auth/directory/sign-in" in banner
    assert f"{DEV_PEOPLE[0].uid} / {DEV_PEOPLE[0].password}" in banner


def test_seeded_people_sign_in(dev_url: tuple[str, Path]) -> None:
    base, _ = dev_url
    alice, bob = DEV_PEOPLE
    response = httpx.post(
        f"{base}/v1/auth/directory/sign-in",
        json={"username": alice.uid, "password": alice.password},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    tokens = response.json()
    access = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    assert {"engineering", "directory"} <= set(access["cognito:groups"])
    me = httpx.get(
        f"{base}/v1/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}, timeout=30
    )
    assert me.status_code == 200 and me.json()["email"] == alice.mail
    assert me.json()["attributes"]["test_attribute1"] == alice.department
    wrong = httpx.post(
        f"{base}/v1/auth/directory/sign-in",
        json={"username": bob.uid, "password": alice.password},
        timeout=30,
    )
    assert wrong.status_code == 401 and wrong.json()["code"] == "invalid_credentials"


@pytest.mark.parametrize("slapd", ["/nonexistent/slapd", "/bin/false"])
def test_without_a_working_slapd_one_clear_line(tmp_path: Path, slapd: str) -> None:
    """No slapd installed (AUTHSVC_DEV_SLAPD at a path that is not there), or one that
    fails: `authsvc dev` stops with one line saying what to do, not a traceback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(AUTHSVC_DEV_DIRECTORY="1", AUTHSVC_DEV_SLAPD=slapd, PYTHONUNBUFFERED="1")
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [str(AUTHSVC), "dev", "--port", str(_free_port()), "--data-dir", str(tmp_path / "d")],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr.decode()
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert "Traceback" not in result.stderr.decode()
    assert len(lines) == 1, lines
    assert lines[0].startswith("authsvc dev: AUTHSVC_DEV_DIRECTORY=1 needs slapd"), lines
