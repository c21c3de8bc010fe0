"""Running `authsvc` as a subprocess against the suite's moto server and databases."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.conftest import Emulator

AUTHSVC = Path(sys.executable).with_name("authsvc")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def env_for(cognito: Emulator | None = None, **settings: str) -> dict[str, str]:
    """A clean environment: no AUTHSVC_* from the shell, fake AWS credentials (moto)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHSVC_", "AWS_"))}
    env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing")  # noqa: S106
    if cognito is not None:
        env.update(
            AUTHSVC_COGNITO_REGION=cognito.pool.region,
            AUTHSVC_COGNITO_USER_POOL_ID=cognito.pool.user_pool_id,
            AUTHSVC_COGNITO_CLIENT_ID=cognito.pool.client_id,
            AUTHSVC_COGNITO_ENDPOINT_URL=cognito.endpoint_url,
            AUTHSVC_SECRET_KEY="operations-test-secret-key-0123",
        )
        if cognito.pool.client_secret:
            env["AUTHSVC_COGNITO_CLIENT_SECRET"] = cognito.pool.client_secret
    env.update({f"AUTHSVC_{k.upper()}": v for k, v in settings.items()})
    return env


def run(
    *args: str, env: dict[str, str], cwd: Path, **kwargs: Any
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AUTHSVC), *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        **kwargs,
    )


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse_metrics(text: str) -> Samples:
    """Prometheus text to {(sample name, labels): value}, parsed by prometheus-client."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of ``name``'s samples whose labels include ``labels`` (0 when none)."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)
