"""Shared pieces of the reliability tests: fault-injecting proxies written for them (asyncio,
loopback only), an SMTP inbox, fresh Postgres databases, and `authsvc serve` subprocesses
pointed through the proxies.

- ``CognitoProxy`` speaks just enough HTTP/1.1 to log every request (by its ``X-Amz-Target``)
  and to inject one fault per request: latency, a reset before or partway through the
  response (after moto has applied the request), a reset without forwarding, or an error
  answered by ``ErrorUpstream`` (a small fake Cognito that only throttles or fails). Closing
  it (``refuse``) leaves nothing listening on its port.
- ``TcpProxy`` forwards bytes (Postgres); ``close`` stops listening and resets every
  established connection, ``open`` listens again on the same port.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any, TypeVar

import httpx
import pytest
from aiosmtpd.controller import Controller

from authsvc import migrate
from tests.conftest import create_database, drop_database
from tests.security.support import free_port, serve_env

T = TypeVar("T")

# Every `authsvc serve` here: two attempts per Cognito call and one-second timeouts, so a
# fault costs a few seconds at most.
MAX_ATTEMPTS = 2
TIMEOUT_S = "1"


# --------------------------------------------------------------------------- event loop


class LoopThread:
    """An asyncio loop in a daemon thread: the proxies and fake upstreams live on it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="proxies", daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 10.0) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), not a FIN: what a crashed peer looks like."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Listener:
    """A loopback server whose port stays the same across ``close`` and ``open``."""

    def __init__(self, loop: LoopThread) -> None:
        self.loop = loop
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    def open(self) -> None:
        self.loop.run(self._open())

    async def _open(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._handle, "127.0.0.1", self.port, reuse_address=True
            )
            self.port = self._server.sockets[0].getsockname()[1]

    def close(self) -> None:
        """Stop listening (connections are refused) and reset every established connection."""
        self.loop.run(self._close())

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        for writer in list(self._writers):
            _reset(writer)
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._server is None:  # accepted just before ``close``, handled just after
            _reset(writer)
            return
        self._writers.add(writer)
        try:
            await self.serve(reader, writer)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            self._writers.discard(writer)
            if not writer.transport.is_closing():
                writer.close()

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------- Postgres


class TcpProxy(Listener):
    """Bytes both ways between a client and ``upstream``; ``close`` is the outage."""

    def __init__(self, loop: LoopThread, upstream: tuple[str, int]) -> None:
        super().__init__(loop)
        self.upstream = upstream

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        if writer.transport.is_closing():  # ``close`` ran while connecting
            _reset(up_writer)
            return
        self._writers.add(up_writer)

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except OSError:
                pass
            finally:
                _reset(dst)

        try:
            await asyncio.gather(pump(reader, up_writer), pump(up_reader, writer))
        finally:
            self._writers.discard(up_writer)


# --------------------------------------------------------------------------- Cognito


THROTTLED = ("TooManyRequestsException", 400, "Rate exceeded")
LIMIT_EXCEEDED = ("LimitExceededException", 400, "Attempt limit exceeded, please try later.")
INTERNAL_ERROR = ("InternalErrorException", 500, "Internal error")


class ErrorUpstream(Listener):
    """A fake Cognito that answers every request with one AWS JSON error."""

    def __init__(self, loop: LoopThread) -> None:
        super().__init__(loop)
        self.error = THROTTLED

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(_content_length(head))
        code, status, message = self.error
        body = json.dumps({"__type": code, "message": message}).encode()
        reason = "Bad Request" if status == 400 else "Internal Server Error"
        writer.write(
            (
                f"HTTP/1.1 {status} {reason}\r\n"
                f"x-amzn-ErrorType: {code}\r\n"
                "Content-Type: application/x-amz-json-1.1\r\n"
                f"Content-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            + body
        )
        await writer.drain()


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    pairs = (line.split(":", 1) for line in lines if ":" in line)
    return {name.strip().lower(): value.strip() for name, value in pairs}


def _content_length(head: bytes) -> int:
    headers = _headers(head)
    assert "chunked" not in headers.get("transfer-encoding", ""), "chunked requests unsupported"
    return int(headers.get("content-length", "0"))


@dataclass(frozen=True)
class Fault:
    """``mode`` applied to requests for ``operation`` (every one when None), ``times`` times
    (forever when None)."""

    mode: str  # latency | reset | reset_partway | drop | error
    operation: str | None = None
    times: int | None = None
    latency: float = 0.0
    error: tuple[str, int, str] = THROTTLED


@dataclass(frozen=True)
class Logged:
    operation: str  # the X-Amz-Target's operation, e.g. "InitiateAuth"
    body: bytes
    fault: str | None


class CognitoProxy(Listener):
    """HTTP-aware fault injection in front of moto (see the module docstring)."""

    def __init__(self, loop: LoopThread, upstream: tuple[str, int]) -> None:
        super().__init__(loop)
        self.upstream = upstream
        self.errors = ErrorUpstream(loop)
        self.log: list[Logged] = []
        self._fault: Fault | None = None
        self._left: int | None = None
        self._lock = threading.Lock()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- control (test thread) ----------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._fault, self._left = fault, fault.times

    def refuse(self) -> None:
        """Nothing listening on the port any more; pooled connections are reset."""
        self.close()

    def clear(self) -> None:
        """No fault, listening again on the same port."""
        with self._lock:
            self._fault, self._left = None, None
        self.open()

    @contextlib.contextmanager
    def faulted(self, fault: Fault) -> Iterator[None]:
        self.inject(fault)
        try:
            yield
        finally:
            self.clear()

    def mark(self) -> int:
        with self._lock:
            return len(self.log)

    def since(self, mark: int, operation: str | None = None) -> list[Logged]:
        with self._lock:
            entries = self.log[mark:]
        return [e for e in entries if operation is None or e.operation == operation]

    def operations(self, mark: int) -> list[str]:
        return [e.operation for e in self.since(mark)]

    # -- proxying (loop thread) ---------------------------------------------------------

    def _take(self, operation: str) -> Fault | None:
        with self._lock:
            fault = self._fault
            if fault is None or (fault.operation not in (None, operation)):
                return None
            if self._left is not None:
                if self._left <= 0:
                    return None
                self._left -= 1
            return fault

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # the client closed an idle connection
            body = await reader.readexactly(_content_length(head))
            operation = _headers(head).get("x-amz-target", "").rpartition(".")[2]
            fault = self._take(operation)
            with self._lock:
                self.log.append(Logged(operation, body, fault.mode if fault else None))
            if fault is not None and fault.mode == "drop":
                _reset(writer)  # never forwarded
                return
            if fault is not None and fault.mode == "latency":
                await asyncio.sleep(fault.latency)
            upstream = self.upstream
            if fault is not None and fault.mode == "error":
                self.errors.error = fault.error
                upstream = ("127.0.0.1", self.errors.port)
            response = await self._exchange(upstream, head, body)
            if fault is not None and fault.mode == "reset":
                _reset(writer)  # applied upstream, answer lost
                return
            if fault is not None and fault.mode == "reset_partway":
                writer.write(response[: len(response) // 2])
                await writer.drain()
                await asyncio.sleep(0.05)
                _reset(writer)
                return
            writer.write(response)
            await writer.drain()
            response_headers = _headers(response.split(b"\r\n\r\n", 1)[0])
            if response_headers.get("connection", "").lower() == "close":
                return

    async def _exchange(self, upstream: tuple[str, int], head: bytes, body: bytes) -> bytes:
        up_reader, up_writer = await asyncio.open_connection(*upstream)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            return await up_reader.read()  # moto answers with Connection: close
        finally:
            up_writer.close()


@pytest.fixture(scope="session")
def loop_thread() -> Iterator[LoopThread]:
    loop = LoopThread()
    yield loop
    loop.stop()


def _host_port(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    assert parsed.host and parsed.port
    return parsed.host, parsed.port


@pytest.fixture(scope="module")
def cognito_proxy(cognito: Any, loop_thread: LoopThread) -> Iterator[CognitoProxy]:
    proxy = CognitoProxy(loop_thread, _host_port(cognito.endpoint_url))
    proxy.errors.open()
    proxy.open()
    yield proxy
    proxy.close()
    proxy.errors.close()


def jwks_url(cognito: Any) -> str:
    """The real moto JWKS, not through the proxy: token verification stays unaffected."""
    return f"{cognito.endpoint_url}/{cognito.pool.user_pool_id}/.well-known/jwks.json"


def reliability_env(
    cognito: Any, database_url: str, proxy: CognitoProxy | None, **settings: str
) -> dict[str, str]:
    """`authsvc serve` pointed at ``proxy`` (or straight at moto), rate limits off."""
    values = {
        "cognito_jwks_url": jwks_url(cognito),
        "cognito_max_attempts": str(MAX_ATTEMPTS),
        "cognito_connect_timeout": TIMEOUT_S,
        "cognito_read_timeout": TIMEOUT_S,
        "rate_limits_enabled": "false",
        "outbox_poll_seconds": "0.5",
    }
    if proxy is not None:
        values["cognito_endpoint_url"] = proxy.endpoint_url
    values.update(settings)
    return serve_env(cognito, database_url, **values)


# --------------------------------------------------------------------------- Postgres


@pytest.fixture(scope="module")
def module_database(postgres_server: str) -> Iterator[str]:
    """A database of this module's own (its `authsvc serve` workers deliver what is due)."""
    url = create_database(postgres_server, prefix="authsvc_rel")
    migrate.upgrade(url)
    yield url
    drop_database(postgres_server, url)


# --------------------------------------------------------------------------- SMTP


@dataclass
class SmtpInbox:
    """What an aiosmtpd server received. ``stall_first`` holds the first DATA that long
    before answering; the message counts as received when its DATA arrived (as with an
    MTA that stores before it replies, the case that makes duplicates: RFC 1047)."""

    stall_first: float = 0.0
    messages: list[Message] = field(default_factory=list)
    first_data: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self._lock:
            self.messages.append(message_from_bytes(envelope.original_content or b""))
            first = not self.first_data.is_set()
            self.first_data.set()
        if first and self.stall_first:
            await asyncio.sleep(self.stall_first)
        return "250 OK"

    def received(self) -> list[Message]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, predicate: Callable[[list[Message]], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.received()):
            assert time.monotonic() < deadline, f"SMTP inbox after {timeout}s: {self.summary()}"
            time.sleep(0.05)

    def summary(self) -> list[tuple[str | None, str | None]]:
        return [(m["To"], m["X-Authsvc-Dedup-Key"]) for m in self.received()]


@contextlib.contextmanager
def smtp_server(inbox: SmtpInbox) -> Iterator[int]:
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


# --------------------------------------------------------------------------- HTTP helpers


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_unavailable(response: httpx.Response) -> None:
    """503 upstream_unavailable as a problem document, with a numeric Retry-After."""
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == "upstream_unavailable", response.text
    retry_after = response.headers.get("retry-after", "")
    assert retry_after.isdigit() and int(retry_after) >= 1, response.headers


def sign_in(client: httpx.Client, email: str, password: str) -> dict[str, Any]:
    response = client.post("/v1/auth/sign-in", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["kind"] == "tokens", body
    return body
