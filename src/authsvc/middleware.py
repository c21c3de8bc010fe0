"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs too much on the hot path).

- request id (``X-Request-ID`` in and out), one access-log line per request;
- security headers on every response, ``Cache-Control: no-store`` on API responses;
- bodies: at most ``max_body_bytes``, JSON only (413 / 415 problem responses).
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authsvc import metrics
from authsvc.clientip import Network, is_trusted
from authsvc.problems import routes_at

log = logging.getLogger("authsvc.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BODY_METHODS = {b"POST", b"PUT", b"PATCH", b"DELETE"}
_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        path: str = scope["path"]
        no_store = path.startswith("/v1/") or path.startswith("/dev/")
        https = scope.get("scheme") == "https" or self._forwarded_https(scope, headers)
        status_holder = [500]
        started_holder = [False]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                started_holder[0] = True
                out = list(message.get("headers", []))
                out.extend(_BASE_HEADERS)
                out.append((b"x-request-id", request_id.encode()))
                if no_store and not any(k.lower() == b"cache-control" for k, _ in out):
                    out.append((b"cache-control", b"no-store"))
                if self.hsts and https:
                    out.append(
                        (b"strict-transport-security", b"max-age=63072000; includeSubDomains")
                    )
                message["headers"] = out
            await send(message)

        try:
            if scope["method"].encode() in _BODY_METHODS:
                rejection = await self._check_body(scope, headers, receive, request_id)
                if isinstance(rejection, tuple):
                    status, body, extra = rejection
                    await send_wrapper(
                        {"type": "http.response.start", "status": status, "headers": extra}
                    )
                    await send_wrapper({"type": "http.response.body", "body": body})
                    return
                receive = rejection
            try:
                await self.app(scope, receive, send_wrapper)
            except Exception:
                if started_holder[0]:
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
            status = status_holder[0]
            metrics.inc("authsvc_requests_total", route=template, status=str(status))
            metrics.inc("authsvc_request_duration_seconds_sum", elapsed, route=template)
            log.info(
                "request",
                extra={
                    "request_id": request_id,
                    "method": scope["method"],
                    "route": template,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )

    def _forwarded_https(self, scope: Scope, headers: dict[bytes, bytes]) -> bool:
        """TLS ended at a proxy we trust, which says so in X-Forwarded-Proto."""
        proto = headers.get(b"x-forwarded-proto")
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
            # The dev stand-in for Cognito's /oauth2 endpoints takes forms, as Cognito does.
            oauth_form = ctype == b"application/x-www-form-urlencoded" and str(
                scope.get("path", "")
            ).startswith("/dev/cognito/oauth2/")
            if not (ctype == b"application/json" or ctype.endswith(b"+json") or oauth_form):
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
