"""oidc-provider (npm, a certified OpenID Provider) started on loopback as Cognito's hosted UI.

`make test` installs it into tests/federation/op/node_modules (npm ci). Without Node or the
package the OP tests skip with a reason on a laptop and fail under CI=true.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import IN_CI
from tests.federation.support import free_port

OP_DIR = Path(__file__).parent / "op"
OP_SECRET = "op-client-secret-for-tests"
PUBLIC_CLIENT_ID = "authsvc-public-client"
CALLBACK_URL = "http://authsvc.test/v1/auth/federation/callback"
APP_URI = "http://app.example.test/signed-in"
# A universal/app link: oidc-provider keeps custom schemes to native-type clients.
NATIVE_URI = "https://app.example.test/oauth2redirect"


@dataclass
class OpenIdProvider:
    issuer: str
    client_id: str
    client_secret: str


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"{reason} — required under CI=true")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def op(cognito) -> Iterator[OpenIdProvider]:  # type: ignore[no-untyped-def]
    node = shutil.which("node")
    if node is None:
        _unavailable("node (20+) is not on PATH; the OAuth tests run oidc-provider with it")
    if not (OP_DIR / "node_modules" / "oidc-provider").is_dir():
        _unavailable(
            "oidc-provider is not installed: `make test` runs npm ci in tests/federation/op"
        )
    port = free_port()
    client_id = cognito.pool.client_id
    env = {
        "PATH": "/usr/bin:/bin:/usr/local/bin",
        "OP_PORT": str(port),
        "OP_CLIENT_ID": client_id,
        "OP_CLIENT_SECRET": OP_SECRET,
        "OP_PUBLIC_CLIENT_ID": PUBLIC_CLIENT_ID,
        "OP_REDIRECT_URIS": f"{CALLBACK_URL},{NATIVE_URI}",
    }
    process = subprocess.Popen(
        [str(node), "server.js"],
        cwd=OP_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration", timeout=1).is_success:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "oidc-provider never got ready"
            time.sleep(0.1)
        yield OpenIdProvider(issuer, client_id, OP_SECRET)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
