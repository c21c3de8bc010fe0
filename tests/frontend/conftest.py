"""A live `authsvc dev` for the front-end developer's path (issue 13): the README walk-through
and the generated clients run against it over HTTP, as a person would."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.test_dev_cli import ADMIN_PASSWORD, AUTHSVC, DevServer, _env, _free_port, _kill

# How long `authsvc dev` may take to answer /healthz. Generous on purpose: on a loaded CI
# machine start-up is slow, and these tests are about what it answers, not how fast.
START_BOUND_SECONDS = 240


def start_dev(work: Path) -> DevServer:
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
        while time.monotonic() < started + START_BOUND_SECONDS:
            assert process.poll() is None, (
                f"authsvc dev exited with {process.returncode}: {stderr.read_text()}"
            )
            try:
                if httpx.get(f"{base_url}/healthz", timeout=2).status_code == 200:
                    return DevServer(base_url, process, stdout, stderr, time.monotonic() - started)
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"authsvc dev never got ready: {stderr.read_text()[-2000:]}")
    except BaseException:
        _kill(process)
        raise


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevServer]:
    server = start_dev(tmp_path_factory.mktemp("dev"))
    try:
        yield server
    finally:
        _kill(server.process)
