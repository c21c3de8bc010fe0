"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs too much on the hot path).

- request id (``X-Request-ID`` in and out), one access-log line per request;
- security headers on every response, ``Cache-Control: no-store`` on API responses;
- bodies: at most ``max_body_bytes``, JSON only (413 / 415 problem responses).
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from authsvc import errors, logs, tracing
from authsvc.auth.schemas import session_json
from authsvc.clientip import Network, is_trusted
from authsvc.metrics import record_request
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
# Answered before routing when the answer is a plain 200 (see _fast_answer).
_FAST_PATHS = frozenset({"/healthz", "/v1/auth/session"})


_ID_PREFIX = os.urandom(8).hex()
_id_counter = itertools.count()


def _new_request_id() -> str:
    """32 hex digits, unique per process: a random prefix drawn at start-up and a counter
    (no getrandom() system call per request; request ids need to be unique, not secret)."""
    return f"{_ID_PREFIX}{next(_id_counter) & 0xFFFFFFFFFFFFFFFF:016x}"


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
        },
        # Byte for byte like problems.problem_response (JSONResponse's rendering).
        ensure_ascii=False,
        allow_nan=False,
        separators=(",", ":"),
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
        traced: bool = False,
    ) -> None:
        self.app = app
        self.traced = traced
        self.max_body_bytes = max_body_bytes
        self.hsts = hsts
        self.trusted_proxies = trusted_proxies
        self._https_headers = [*_BASE_HEADERS, _HSTS]
        from authsvc.health.endpoints import HEALTHY_BODY

        self._healthy = HEALTHY_BODY

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        # One pass over the raw headers instead of a dict per request.
        incoming = b""
        forwarded_proto = None
        authorization = b""
        cross_origin = False
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                incoming = value
            elif name == b"x-forwarded-proto":
                forwarded_proto = value
            elif name == b"authorization":
                authorization = value
            elif name == b"origin":
                cross_origin = True
        if incoming and _REQUEST_ID.fullmatch(incoming):
            request_id = incoming.decode("ascii")
        else:
            request_id = _new_request_id()
        scope.setdefault("state", {})["request_id"] = request_id
        # With tracing on, the request id is on the server span and the trace id in the
        # access log line: either finds the other.
        trace_id = tracing.tag_request(request_id) if self.traced else None
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
        template: str | None = None

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
            if scope["method"] == "GET" and path in _FAST_PATHS and not cross_origin:
                body = self._fast_answer(scope, path, authorization)
                if body is not None:
                    template = path
                    await send_wrapper(
                        {
                            "type": "http.response.start",
                            "status": 200,
                            "headers": [
                                (b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                            ],
                        }
                    )
                    await send_wrapper({"type": "http.response.body", "body": body})
                    return
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
            if template is None:
                template = _route_template(scope)
            elapsed = time.perf_counter() - started
            method = scope["method"]
            record_request((template, method, status, elapsed))
            logs.access(request_id, method, template, status, round(elapsed * 1000, 2), trace_id)

    def _fast_answer(self, scope: Scope, path: str, authorization: bytes) -> bytes | None:
        """The body of a 200 for GET /healthz, or for GET /v1/auth/session with a token the
        verifier has already checked (cached, unexpired, not revoked); None sends the request
        on to its route, which answers every other case (and every error) itself.

        Why: FastAPI's dispatch through included routers costs more than everything else
        these two answers need (bench/README.md). The routes stay the documented source of
        truth; this only answers, with the same bytes, what they would answer. Cross-origin
        requests always go through (CORS headers are added inside).
        """
        if path == "/healthz":
            return self._healthy
        scheme, _, token = authorization.partition(b" ")
        if scheme.lower() != b"bearer" or not token:
            return None
        app = scope.get("app")
        state = getattr(getattr(app, "state", None), "authsvc", None)
        if state is None:
            return None
        credentials = token.decode("latin-1")
        verifier = state.verifier
        if not verifier.is_cached(credentials):
            return None
        try:
            claims = verifier.verify_access(credentials)
        except errors.AuthSvcError:
            return None  # expired or revoked: the route answers the problem
        return session_json(claims)

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
