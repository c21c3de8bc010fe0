"""Helpers for the security tests: apps with the rate limits on, a counter of Cognito calls,
users made straight at the emulator (so setting them up costs no rate-limit budget), a real
uvicorn server in a thread, and `authsvc serve` instances run as subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from authsvc.dev.outbox import DevOutbox
from authsvc.main import create_app
from authsvc.state import AppState
from tests.conftest import make_settings
from tests.helpers import PASSWORD, new_email

AUTHSVC = Path(sys.executable).with_name("authsvc")
READY_TIMEOUT_S = 60.0

# The address requests come from when a test does not care (setting users up): never the
# address a test exhausts.
SETUP_IP = "192.0.2.250"


def random_ip() -> str:
    """A fresh private address, so a bucket in shared storage (Redis) starts empty."""
    raw = uuid.uuid4().bytes
    return f"10.{raw[0]}.{raw[1]}.{raw[2] % 250 + 1}"


# --------------------------------------------------------------------------- Cognito calls


class CognitoCalls:
    """Counts every call the gateway's boto3 cognito-idp clients make (a handler on each
    client's event system). The gateway keeps more than one client (non-idempotent calls
    go through one that never retries): every one of them is counted."""

    def __init__(self, gateway: Any) -> None:
        self.names: list[str] = []
        self._lock = threading.Lock()
        self.clients = {
            id(value): value
            for value in vars(gateway).values()
            if getattr(getattr(value, "meta", None), "service_model", None) is not None
            and value.meta.service_model.service_name == "cognito-idp"
        }
        assert self.clients, "the gateway has no cognito-idp client to count calls on"
        for client in self.clients.values():
            client.meta.events.register(
                "before-call.cognito-identity-provider", self._count, unique_id=f"n-{id(self)}"
            )

    def _count(self, model: Any = None, **_: Any) -> None:
        with self._lock:
            self.names.append(getattr(model, "name", "?"))

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.names)

    def since(self, mark: int) -> list[str]:
        with self._lock:
            return self.names[mark:]


# --------------------------------------------------------------------------- limited apps


@dataclass
class LimitedApp:
    """An app with the rate limits on, and a way to send requests from any client address."""

    app: FastAPI
    client: TestClient  # the one that ran the lifespan; its peer is SETUP_IP
    calls: CognitoCalls
    _peers: dict[str, TestClient] = field(default_factory=dict)

    @property
    def state(self) -> AppState:
        state: AppState = self.app.state.authsvc
        return state

    @property
    def outbox(self) -> DevOutbox:
        box = self.state.outbox
        assert box is not None
        return box

    def peer(self, ip: str) -> TestClient:
        """A client whose requests come from ``ip`` (the app is already started)."""
        if ip not in self._peers:
            self._peers[ip] = TestClient(
                self.app, raise_server_exceptions=False, client=(ip, 40000)
            )
        return self._peers[ip]


@contextmanager
def limited_app(cognito: Any, database_url: str, **overrides: Any) -> Iterator[LimitedApp]:
    values: dict[str, Any] = {
        "rate_limits_enabled": True,
        # No background Cognito calls while a test counts them.
        "reconcile_interval_seconds": 3600.0,
    }
    values.update(overrides)
    app = create_app(make_settings(cognito, database_url, **values))
    calls = CognitoCalls(app.state.authsvc.gateway)
    with TestClient(app, raise_server_exceptions=False, client=(SETUP_IP, 40000)) as client:
        yield LimitedApp(app, client, calls)


def assert_limited(response: Any, *, max_retry_after: int) -> dict[str, Any]:
    """429 rate_limited as a problem document with a numeric Retry-After in (0, max]."""
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["code"] == "rate_limited", body
    assert body["status"] == 429
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit(), response.headers
    assert 0 < int(retry_after) <= max_retry_after, retry_after
    return body


def without_request_id(body: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


# --------------------------------------------------------------------------- users


def direct_user(
    cognito: Any, email: str | None = None, password: str = PASSWORD, *, tag: str = "sec"
) -> str:
    """A confirmed user with a permanent password, made straight at the emulator."""
    email = email or new_email(tag)
    cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Security"},
        ],
    )
    cognito.client.admin_set_user_password(
        UserPoolId=cognito.pool.user_pool_id, Username=email, Password=password, Permanent=True
    )
    return email


def username_of(cognito: Any, email: str) -> str:
    user = cognito.client.admin_get_user(UserPoolId=cognito.pool.user_pool_id, Username=email)
    return str(user["Username"])


def make_admin(cognito: Any) -> str:
    email = direct_user(cognito, tag="secadmin")
    cognito.client.admin_add_user_to_group(
        UserPoolId=cognito.pool.user_pool_id, Username=email, GroupName="admin"
    )
    return email


# --------------------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ThreadedServer:
    """The app behind a real uvicorn on 127.0.0.1, configured like `authsvc serve`."""

    def __init__(self, app: FastAPI) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            proxy_headers=False,  # as in `authsvc serve`: authsvc reads X-Forwarded-For itself
            server_header=False,
            lifespan="off",  # the TestClient that built the app already started it
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive(), "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start within 20 s"
            time.sleep(0.02)
        return self

    def __exit__(self, *_: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


@dataclass
class ServeInstance:
    name: str
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=15.0, **kwargs)

    def output(self) -> str:
        try:
            return self.log.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


# `authsvc serve` answers /metrics only with this bearer token (AUTHSVC_METRICS_TOKEN).
METRICS_TOKEN = "test-metrics-token-0123456789"
METRICS_HEADERS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def serve_env(cognito: Any, database_url: str, **settings: str) -> dict[str, str]:
    """The environment of an `authsvc serve` pointed at the test emulator and database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(
        {
            "AUTHSVC_COGNITO_REGION": cognito.pool.region,
            "AUTHSVC_COGNITO_USER_POOL_ID": cognito.pool.user_pool_id,
            "AUTHSVC_COGNITO_CLIENT_ID": cognito.pool.client_id,
            "AUTHSVC_COGNITO_ENDPOINT_URL": cognito.endpoint_url,
            "AUTHSVC_DATABASE_URL": database_url,
            "AUTHSVC_SECRET_KEY": "security-tests-secret-key-0123456789",
            "AUTHSVC_LOG_LEVEL": "WARNING",
            "AUTHSVC_RECONCILE_INTERVAL_SECONDS": "3600",
            "AUTHSVC_METRICS_TOKEN": METRICS_TOKEN,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": cognito.pool.region,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if cognito.pool.client_secret:
        env["AUTHSVC_COGNITO_CLIENT_SECRET"] = cognito.pool.client_secret
    env.update({f"AUTHSVC_{name.upper()}": value for name, value in settings.items()})
    return env


def start_serve(names: list[str], env: dict[str, str], workdir: Path) -> list[ServeInstance]:
    """Start one `authsvc serve` per name (in parallel) and wait until each answers /healthz."""
    instances: list[ServeInstance] = []
    try:
        for name in names:
            port = free_port()
            log = workdir / f"{name}.log"
            with log.open("wb") as out:
                process = subprocess.Popen(
                    [str(AUTHSVC), "serve", "--host", "127.0.0.1", "--port", str(port)],
                    env=env,
                    cwd=workdir,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            instances.append(ServeInstance(name, f"http://127.0.0.1:{port}", process, log))
        deadline = time.monotonic() + READY_TIMEOUT_S
        for instance in instances:
            while True:
                code = instance.process.poll()
                assert code is None, f"{instance.name} exited with {code}: {instance.output()}"
                try:
                    if httpx.get(f"{instance.base_url}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (
                    f"{instance.name} not ready in {READY_TIMEOUT_S:.0f}s: {instance.output()}"
                )
                time.sleep(0.05)
        return instances
    except BaseException:
        stop_serve(instances)
        raise


def stop_serve(instances: list[ServeInstance]) -> None:
    for instance in instances:
        if instance.process.poll() is None:
            instance.process.terminate()
    for instance in instances:
        try:
            instance.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            instance.process.kill()
            instance.process.wait(timeout=10)
