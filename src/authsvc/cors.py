"""CORS for ``AUTHSVC_CORS_ORIGINS``, whose refusals are problem documents (issue 13).

Starlette answers a refused preflight with a plain-text 400 ("Disallowed CORS origin"), and
with no CORS middleware at all a preflight meets a bare 405. Either leaves a front-end
developer guessing: this answers 403 `forbidden` as a problem document that names what was
refused and the setting to change. Requests without an ``Origin`` pass straight through.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from authsvc.problems import PROBLEM_MEDIA_TYPE

ALLOWED_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]
ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-CSRF", "X-Token-Transport", "X-Request-ID"]


class ProblemCORSMiddleware(CORSMiddleware):
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "OPTIONS":
            headers = Headers(scope=scope)
            if "origin" in headers and "access-control-request-method" in headers:
                response = self.preflight_response(request_headers=headers)
                if response.status_code >= 400:
                    response = _refusal(response, scope)
                await response(scope, receive, send)
                return
        if not self.allow_origins:  # no origin listed: nothing to add to any answer
            await self.app(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _refusal(response: Response, scope: Scope) -> Response:
    refused = bytes(response.body).decode().removeprefix("Disallowed CORS ")
    if "origin" in refused:
        detail = (
            "This origin may not call the API from a browser: add it to"
            " AUTHSVC_CORS_ORIGINS (comma-separated) on the server."
        )
    else:
        detail = (
            f"CORS preflight refused ({refused}). Allowed methods: "
            f"{', '.join(ALLOWED_METHODS)}; headers: {', '.join(ALLOWED_HEADERS)}"
            " (origins: AUTHSVC_CORS_ORIGINS)."
        )
    body = {
        "type": "urn:authsvc:problem:forbidden",
        "title": "Forbidden",
        "status": 403,
        "detail": detail,
        "code": "forbidden",
    }
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        body["request_id"] = request_id
    # A refusal grants nothing: no Access-Control-Allow-* header (Vary stays).
    headers = {
        name: value
        for name, value in response.headers.items()
        if name.lower() not in {"content-length", "content-type"}
        and not name.lower().startswith("access-control-")
    }
    return JSONResponse(body, status_code=403, headers=headers, media_type=PROBLEM_MEDIA_TYPE)
