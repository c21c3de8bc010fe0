"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs too much on the hot path).

- request id (``X-Request-ID`` in and out), one access-log line per request;
- security headers on every response, ``Cache-Control: no-store`` on API responses;
- bodies: at most ``max_body_bytes``, JSON only (413 / 415 problem responses).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authsvc import logs, metrics
from authsvc.clientip import Network, is_trusted
from authsvc.problems import routes_at

log = logging.getLogger("authsvc.access")

_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Pre-encoded once: every response gets these.
_BASE_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_HSTS = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
_NO_STORE = (b"cache-control", b"no-store")


def _problem(
    status: int, code: str, title: str, detail: str, request_id: str
) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    body = json.dumps(
        {
            "type": f"urn:authsvc:problem:{code}",
            "title": title,
            "status": status,
            "detail": detail,
            "code": code,
            "request_id": request_id,
        }
    ).encode()
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    return body, headers


def _route_template(scope: Scope) -> str:
    """The route's path template, never the raw path (it may carry anything a client sent).

    Requests refused here before routing (413, 415, 400) are matched against the app's
    routes for the log line; a path no route matches is ``unmatched``.
    """
    route = scope.get("route")
    if route is None:
        matching = routes_at(scope.get("app"), scope["path"])
        route = matching[0] if matching else None
    # path_format: `/v1/invitations/{invitation_id}`, without the `:uuid` convertor.
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return str(template) if template else "unmatched"


class AuthSvcMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        hsts: bool = False,
        trusted_proxies: tuple[Network, ...] = (),
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts
        self.trusted_proxies = trusted_proxies
        self._https_headers = [*_BASE_HEADERS, _HSTS]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # One pass over the raw headers instead of a dict per request.
        incoming = b""
        forwarded_proto = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
        if incoming and _REQUEST_ID.fullmatch(incoming):
            request_id = incoming.decode("ascii")
        else:
            request_id = os.urandom(16).hex()
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        no_store = path.startswith(("/v1/", "/dev/"))
        https = scope.get("scheme") == "https" or (
            forwarded_proto is not None and self._forwarded_https(scope, forwarded_proto)
        )
        extra_headers = [
            *(self._https_headers if self.hsts and https else _BASE_HEADERS),
            (b"x-request-id", request_id.encode("ascii")),
        ]
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status = message["status"]
                response_started = True
                out = list(message.get("headers", ()))
                if no_store and not any(k.lower() == b"cache-control" for k, _ in out):
                    out.append(_NO_STORE)
                out += extra_headers
                message["headers"] = out
            await send(message)

        try:
            if scope["method"] in _BODY_METHODS:
                rejection = await self._check_body(
                    scope, dict(scope["headers"]), receive, request_id
                )
                if isinstance(rejection, tuple):
                    rejected, body, extra = rejection
                    await send_wrapper(
                        {"type": "http.response.start", "status": rejected, "headers": extra}
                    )
                    await send_wrapper({"type": "http.response.body", "body": body})
                    return
                receive = rejection
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception:
                if response_started:
                    raise
                # Starlette answers an unhandled error outside every middleware, so its 500
                # would lack the headers above: answer it here, opaque, like any problem.
                log.exception(
                    "unhandled error",
                    extra={"request_id": request_id, "route": _route_template(scope)},
                )
                body, extra = _problem(
                    500,
                    "internal_error",
                    "Internal server error",
                    "An unexpected error occurred.",
                    request_id,
                )
                await send_wrapper({"type": "http.response.start", "status": 500, "headers": extra})
                await send_wrapper({"type": "http.response.body", "body": body})
        finally:
            template = _route_template(scope)
            elapsed = time.perf_counter() - started
            metrics.observe_request(template, status, elapsed)
            logs.access(request_id, scope["method"], template, status, round(elapsed * 1000, 2))

    def _forwarded_https(self, scope: Scope, proto: bytes) -> bool:
        """TLS ended at a proxy we trust, which says so in X-Forwarded-Proto."""
        client = scope.get("client")
        if not proto or not client or not self.trusted_proxies:
            return False
        trusted = is_trusted(str(client[0]), self.trusted_proxies)
        return trusted and proto.split(b",")[0].strip().lower() == b"https"

    async def _check_body(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, request_id: str
    ) -> Any:
        length = headers.get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:
                body, extra = _problem(
                    400, "bad_request", "Bad request", "Invalid Content-Length.", request_id
                )
                return 400, body, extra
            if declared > self.max_body_bytes:
                return self._too_large(request_id)
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return receive
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return self._too_large(request_id)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if body.strip():
            ctype = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if not (ctype == b"application/json" or ctype.endswith(b"+json")):
                payload, extra = _problem(
                    415,
                    "unsupported_media_type",
                    "Unsupported media type",
                    "Send the body as application/json.",
                    request_id,
                )
                return 415, payload, extra
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay

    def _too_large(self, request_id: str) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        body, extra = _problem(
            413,
            "payload_too_large",
            "Payload too large",
            f"The body is larger than {self.max_body_bytes} bytes.",
            request_id,
        )
        return 413, body, extra
