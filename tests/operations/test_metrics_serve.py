"""`authsvc serve --workers 2` (issue 16.5): every worker's numbers in one scrape.

A real subprocess: requests reach both workers (each answers with its own request-id
prefix), one scrape, answered by either worker, counts them all; a worker killed is
replaced and its live gauges leave the scrape while its counts stay; the directory the
workers shared (0700, created by `serve`) is gone after a clean exit.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from tests.conftest import Emulator
from tests.operations.support import AUTHSVC, env_for, free_port, parse_metrics, value

TOKEN = "serve-metrics-token-0123456789"
HEADERS = {"Authorization": f"Bearer {TOKEN}"}
DEADLINE_S = 60.0


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    base_url: str
    tmpdir: Path
    logs: Callable[[], str]


def _wait_for(check: Callable[[], Any], what: str, show: Callable[[], object]) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.25)
    pytest.fail(f"{what}: {show()}")


def _start(env: dict[str, str], tmp_path: Path, workers: int = 2) -> Served:
    port = free_port()
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    env = {**env, "TMPDIR": str(tmpdir)}
    out, err = tmp_path / "out.log", tmp_path / "err.log"
    with out.open("w") as stdout, err.open("w") as stderr:
        process = subprocess.Popen(
            [str(AUTHSVC), "serve", "--port", str(port), "--workers", str(workers)],
            env=env,
            cwd=tmp_path,
            stdout=stdout,
            stderr=stderr,
        )
    served = Served(
        process, f"http://127.0.0.1:{port}", tmpdir, lambda: out.read_text() + err.read_text()
    )

    def up() -> bool:
        if process.poll() is not None:
            pytest.fail(f"serve exited {process.returncode}: {served.logs()}")
        try:
            return httpx.get(f"{served.base_url}/healthz", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    _wait_for(up, "serve never answered", served.logs)
    return served


@pytest.fixture
def served(cognito: Emulator, database_url: str, tmp_path: Path) -> Iterator[Served]:
    env = env_for(cognito, database_url=database_url, metrics_token=TOKEN, rate_limits_enabled="0")
    served = _start(env, tmp_path)
    yield served
    if served.process.poll() is None:
        served.process.send_signal(signal.SIGTERM)
        served.process.wait(timeout=60)


def _scrape(served: Served) -> dict[Any, float]:
    response = httpx.get(f"{served.base_url}/metrics", headers=HEADERS, timeout=10)
    assert response.status_code == 200, response.text
    return parse_metrics(response.text)


def _workers_answering(served: Served, count: int) -> dict[str, int]:
    """Send ``count`` GET /healthz, each on a new connection; requests per worker (the
    request id's first 16 hex digits are drawn once per worker process)."""
    seen: dict[str, int] = {}
    for _ in range(count):
        with httpx.Client(base_url=served.base_url, timeout=5) as client:
            response = client.get("/healthz", headers={"Connection": "close"})
        assert response.status_code == 200
        prefix = response.headers["x-request-id"][:16]
        seen[prefix] = seen.get(prefix, 0) + 1
    return seen


def _healthz_total(samples: dict[Any, float]) -> float:
    return value(samples, "authsvc_requests_total", route="/healthz", method="GET", status="200")


def _settled_healthz_total(served: Served) -> float:
    """The /healthz count once every worker has flushed what it recorded (the readiness
    polls may still sit in the other worker's buffer): two scrapes a flush period apart
    that agree."""
    previous = _healthz_total(_scrape(served))
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        time.sleep(1.5)  # longer than the workers' 1-second flush
        current = _healthz_total(_scrape(served))
        if current == previous:
            return current
        previous = current
    pytest.fail(f"the /healthz count never settled: {previous}")


def _pids(samples: dict[Any, float]) -> set[str]:
    return {
        dict(labels)["pid"]
        for (name, labels), _ in samples.items()
        if name == "process_resident_memory_bytes"
    }


def test_one_scrape_sums_both_workers(served: Served) -> None:
    (directory,) = served.tmpdir.iterdir()
    assert directory.name.startswith("authsvc-metrics-")
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert f"metrics: 2 workers share {directory}" in served.logs()

    before = _settled_healthz_total(served)
    sent: dict[str, int] = {}
    for _ in range(20):  # new connections until both workers have answered
        for prefix, n in _workers_answering(served, 20).items():
            sent[prefix] = sent.get(prefix, 0) + n
        if len(sent) == 2:
            break
    assert len(sent) == 2, f"one worker answered everything: {sent}"
    total = sum(sent.values())

    # Each worker flushes at least once a second; one scrape then shows the sum.
    samples = _wait_for(
        lambda: (s := _scrape(served)) and _healthz_total(s) - before == total and s,
        "the scrape never summed both workers",
        lambda: (sent, _healthz_total(_scrape(served)) - before),
    )
    buckets = value(
        samples,
        "authsvc_request_duration_seconds_count",
        route="/healthz",
        method="GET",
        status="200",
    )
    assert buckets == _healthz_total(samples)
    pids = _pids(samples)
    assert len(pids) == 2, pids  # each worker's own process metrics, by pid
    assert value(samples, "authsvc_revocation_sync_healthy") == 1  # livemin: both healthy

    # A worker killed outright: uvicorn replaces it; its live gauges leave the scrape
    # (mark_process_dead), its counts stay in the total.
    victim = sorted(pids)[0]
    os.kill(int(victim), signal.SIGKILL)

    def replaced() -> dict[Any, float] | None:
        s = _scrape(served)
        now = _pids(s)
        return s if victim not in now and len(now) == 2 else None

    after = _wait_for(replaced, "the dead worker's gauges stayed", lambda: _pids(_scrape(served)))
    assert _healthz_total(after) - before >= total

    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0, served.logs()
    assert not directory.exists(), "the metrics directory outlived serve"
    assert list(served.tmpdir.iterdir()) == []


def test_a_directory_it_cannot_create_is_one_clear_error(
    cognito: Emulator, database_url: str, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    env = env_for(cognito, database_url=database_url, metrics_token=TOKEN)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(blocker / "metrics")
    result = subprocess.run(
        [str(AUTHSVC), "serve", "--port", str(free_port()), "--workers", "2"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert (
        f"authsvc: configuration error: PROMETHEUS_MULTIPROC_DIR={blocker / 'metrics'}:"
        " cannot create it" in result.stderr
    )
    assert "Traceback" not in result.stderr


def test_the_last_seconds_requests_are_counted_after_a_clean_exit(
    cognito: Emulator, database_url: str, tmp_path: Path
) -> None:
    # The operator's own directory outlives serve; a worker stopped right after answering
    # (within its 1-second flush period) still leaves every request it answered in it.
    directory = tmp_path / "metrics"
    env = env_for(cognito, database_url=database_url, metrics_token=TOKEN, rate_limits_enabled="0")
    env["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    served = _start(env, tmp_path, workers=1)
    try:
        for _ in range(7):
            response = httpx.get(f"{served.base_url}/v1/auth/session", timeout=5)
            assert response.status_code == 401
    finally:
        served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=60) == 0, served.logs()

    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))
    counted = registry.get_sample_value(
        "authsvc_requests_total",
        {"route": "/v1/auth/session", "method": "GET", "status": "401"},
    )
    assert counted == 7, served.logs()
