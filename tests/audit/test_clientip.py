"""The client address in the audit log: the socket peer, or X-Forwarded-For only when the
peer is a proxy listed in AUTHSVC_TRUSTED_PROXIES.

The TestClient's peer is the string "testclient", not an address, so the proxy logic is
unit-tested on ``clientip.client_ip`` and shown end to end on real uvicorn servers bound to
127.0.0.1 (configured as ``authsvc serve`` and ``authsvc dev`` configure theirs): one that
trusts 127.0.0.1 and one that trusts nobody. uvicorn's own proxy-header handling must be off
(by default it believes X-Forwarded-For from any client on 127.0.0.1): the CLI tests below
check that both commands turn it off.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from authsvc import cli, logs, migrate
from authsvc.audit.models import AuditEvent
from authsvc.clientip import client_ip, joined, limit_address, parse_networks
from authsvc.dev import runner
from authsvc.main import create_app
from tests.conftest import make_settings
from tests.helpers import PASSWORD, new_email

PROXY = parse_networks(["10.0.0.0/8", "192.0.2.1", "2001:db8:ffff::/48"])


# -- unit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("peer", "header", "expected"),
    [
        # no header: the peer
        ("10.0.0.1", None, "10.0.0.1"),
        ("10.0.0.1", "", "10.0.0.1"),
        # a trusted peer: the nearest hop that is not one of our proxies
        ("10.0.0.1", "203.0.113.7", "203.0.113.7"),
        ("192.0.2.1", "203.0.113.7", "203.0.113.7"),
        ("10.0.0.1", "203.0.113.7, 10.0.0.2", "203.0.113.7"),
        ("10.0.0.1", "203.0.113.7,10.0.0.2,10.9.9.9", "203.0.113.7"),
        # spoofed left-most entries (the client wrote them) are ignored
        ("10.0.0.1", "6.6.6.6, 203.0.113.7", "203.0.113.7"),
        ("10.0.0.1", "127.0.0.1, 10.0.0.5, 203.0.113.7, 10.0.0.2", "203.0.113.7"),
        ("10.0.0.1", "garbage, 203.0.113.7", "203.0.113.7"),
        # every hop is one of ours: the farthest one
        ("10.0.0.1", "10.0.0.3, 10.0.0.2", "10.0.0.3"),
        # an untrusted peer: its header is the client's own words
        ("198.51.100.9", "203.0.113.7", "198.51.100.9"),
        ("198.51.100.9", "10.0.0.1", "198.51.100.9"),
        ("11.0.0.1", "203.0.113.7", "11.0.0.1"),
        # a garbled chain from a trusted peer: only the socket is believed
        ("10.0.0.1", "not-an-ip", "10.0.0.1"),
        ("10.0.0.1", "203.0.113.7, not-an-ip", "10.0.0.1"),
        ("10.0.0.1", "203.0.113.7:abc", "10.0.0.1"),
        ("10.0.0.1", "[2001:db8::42]:x", "10.0.0.1"),
        ("10.0.0.1", "[2001:db8::42", "10.0.0.1"),
        ("10.0.0.1", "999.1.1.1", "10.0.0.1"),
        ("10.0.0.1", ",,, ,", "10.0.0.1"),
        ("10.0.0.1", "unknown", "10.0.0.1"),
        # ports are stripped (issue 11, item 8): the client is the address, not the socket
        ("10.0.0.1", "203.0.113.7:4711", "203.0.113.7"),
        ("10.0.0.1", "[2001:db8::42]:443", "2001:db8::42"),
        ("10.0.0.1", "203.0.113.7:4711, 10.0.0.2:80", "203.0.113.7"),
        ("10.0.0.1", "6.6.6.6:1, 203.0.113.7:4711", "203.0.113.7"),
        # IPv6, bracketed or not
        ("2001:db8:ffff::1", "2001:db8::42", "2001:db8::42"),
        ("10.0.0.1", "[2001:db8::42]", "2001:db8::42"),
        ("2001:db8:ffff::1", "203.0.113.7, 2001:db8:ffff::2", "203.0.113.7"),
        # a peer that is not an address (the TestClient's "testclient") is never trusted
        ("testclient", "203.0.113.7", "testclient"),
        (None, "203.0.113.7", None),
    ],
)
def test_client_ip(peer, header, expected):
    assert client_ip(peer, header, PROXY) == expected


def test_every_header_line_is_read_right_to_left():
    """Issue 11, item 8: a proxy that appends its hop as a header line of its own must not
    let the client's own line (the first one) decide the address."""
    lines = ["6.6.6.6", "203.0.113.7"]  # the client's line, then the proxy's
    assert joined(lines) == "6.6.6.6,203.0.113.7"
    assert client_ip("10.0.0.1", joined(lines), PROXY) == "203.0.113.7"
    assert joined([]) is None


@pytest.mark.parametrize(
    ("ip", "key"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("testclient", "testclient"),
        (None, None),
    ],
)
def test_limits_count_ipv6_clients_per_64(ip, key):
    assert limit_address(ip) == key


def test_no_trusted_proxies_means_the_peer():
    assert client_ip("10.0.0.1", "203.0.113.7", ()) == "10.0.0.1"
    assert client_ip("127.0.0.1", "203.0.113.7", ()) == "127.0.0.1"


def test_addresses_come_back_normalised():
    trusted = parse_networks(["127.0.0.1"])
    assert client_ip("127.0.0.1", " 2001:DB8:0:0::42 ", trusted) == "2001:db8::42"


def test_parse_networks():
    nets = parse_networks(["127.0.0.1", " 10.0.0.0/8 ", "", "2001:db8::/32", "192.168.1.7/24"])
    assert [str(n) for n in nets] == [
        "127.0.0.1/32",
        "10.0.0.0/8",
        "2001:db8::/32",
        "192.168.1.0/24",
    ]


# -- end to end on uvicorn -----------------------------------------------------------------


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a real uvicorn server on 127.0.0.1 in a thread; yield its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="on", log_level="warning", proxy_headers=False)
    )
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped during start-up"
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        sock.close()


def failed_sign_in(base: str, email: str, forwarded_for: str | None) -> None:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for is not None else {}
    response = httpx.post(
        f"{base}/v1/auth/sign-in",
        json={"email": email, "password": PASSWORD},
        headers=headers,
        timeout=20,
    )
    assert response.status_code == 401, response.text


def recorded_ip(app: FastAPI, email: str) -> str | None:
    state = app.state.authsvc
    state.audit.flush()
    with state.db.sessions() as session:
        rows = list(session.scalars(select(AuditEvent).where(AuditEvent.target_email == email)))
    assert len(rows) == 1, rows
    return rows[0].ip


@pytest.fixture(scope="module")
def behind_proxy(cognito: Any, database_url: str) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(make_settings(cognito, database_url, trusted_proxies=["127.0.0.1"]))
    with serve(app) as base:
        yield app, base


@pytest.fixture(scope="module")
def exposed(cognito: Any, database_url: str) -> Iterator[tuple[FastAPI, str]]:
    app = create_app(make_settings(cognito, database_url, trusted_proxies=[]))
    with serve(app) as base:
        yield app, base


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("6.6.6.6, 203.0.113.7", "203.0.113.7"),  # the client's own entry is ignored
        ("203.0.113.7, 127.0.0.1", "203.0.113.7"),  # a second trusted hop is skipped
        ("not-an-address", "127.0.0.1"),
        (None, "127.0.0.1"),
    ],
)
def test_a_trusted_proxy_is_believed(behind_proxy, header, expected):
    app, base = behind_proxy
    email = new_email("xff")
    failed_sign_in(base, email, header)
    assert recorded_ip(app, email) == expected


def test_a_forwarded_for_split_over_several_lines_is_read_whole(behind_proxy):
    """The client sends its own X-Forwarded-For line; the proxy adds a second line."""
    app, base = behind_proxy
    email = new_email("xff")
    response = httpx.post(
        f"{base}/v1/auth/sign-in",
        json={"email": email, "password": PASSWORD},
        headers=[("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.8:5555")],
        timeout=20,
    )
    assert response.status_code == 401, response.text
    assert recorded_ip(app, email) == "203.0.113.8"


@pytest.mark.parametrize("header", ["203.0.113.7", "6.6.6.6, 203.0.113.7", None])
def test_without_trusted_proxies_the_header_is_ignored(exposed, header):
    app, base = exposed
    email = new_email("xff")
    failed_sign_in(base, email, header)
    assert recorded_ip(app, email) == "127.0.0.1"


# -- the CLI runs uvicorn that way -----------------------------------------------------------


@pytest.fixture
def quiet_cli(monkeypatch):
    """Keep the CLI from reconfiguring this process's logging."""
    monkeypatch.setattr(logs, "configure", lambda *args, **kwargs: None)


def test_authsvc_serve_leaves_forwarded_headers_to_authsvc(monkeypatch, quiet_cli, settings):
    seen: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    monkeypatch.setenv("AUTHSVC_COGNITO_USER_POOL_ID", settings.cognito_user_pool_id)
    monkeypatch.setenv("AUTHSVC_COGNITO_CLIENT_ID", settings.cognito_client_id)
    monkeypatch.setenv("AUTHSVC_SECRET_KEY", "s" * 32)
    assert cli.main(["serve", "--port", "1"]) == 0
    assert seen["proxy_headers"] is False


def test_authsvc_dev_leaves_forwarded_headers_to_authsvc(monkeypatch, quiet_cli, settings):
    configs: list[uvicorn.Config] = []

    class Server:
        def __init__(self, config: uvicorn.Config) -> None:
            configs.append(config)

        def run(self) -> None:
            pass

    stopped: list[bool] = []
    env = SimpleNamespace(
        settings=settings, emulator=SimpleNamespace(stop=lambda: stopped.append(True))
    )
    monkeypatch.setattr(runner, "start", lambda **kwargs: env)
    monkeypatch.setattr(runner, "banner", lambda *args, **kwargs: "")
    monkeypatch.setattr(migrate, "upgrade", lambda url: None)
    monkeypatch.setattr(uvicorn, "Server", Server)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    assert cli.main(["dev", "--port", "1"]) == 0
    (config,) = configs
    assert config.proxy_headers is False
    assert stopped == [True]
