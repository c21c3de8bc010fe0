"""One renderer: every error becomes RFC 9457 ``application/problem+json`` (DESIGN §2)."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Mount

from authsvc import db, errors
from authsvc.problem_docs import (
    _HTTP_CODES,
    PROBLEM_MEDIA_TYPE,
    Problem,
    complete_document,
    problem_example,
    responses,
)

# The problem models and the document's helpers (problem_docs.py) are importable from here.
__all__ = [
    "PROBLEM_MEDIA_TYPE",
    "REDACTED_NAME",
    "Problem",
    "allowed_methods",
    "complete_document",
    "install",
    "problem_example",
    "problem_response",
    "render_error",
    "responses",
    "routes_at",
]

log = logging.getLogger("authsvc.errors")


def problem_response(
    request: Request | None,
    *,
    status: int,
    code: str,
    title: str,
    detail: str,
    headers: dict[str, str] | None = None,
    extra: dict[str, Any] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": f"urn:authsvc:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
    }
    request_id = getattr(request.state, "request_id", None) if request is not None else None
    if request_id:
        body["request_id"] = request_id
    if extra:
        body.update(extra)
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def render_error(request: Request | None, exc: errors.AuthSvcError) -> JSONResponse:
    return problem_response(
        request,
        status=exc.status,
        code=exc.code,
        title=exc.title,
        detail=exc.detail,
        headers=exc.headers,
        extra=exc.extra,
    )


# A field name a client sent is echoed in `loc` only when it is short and printable
# (issue 11): anything else could flood a log or a terminal that shows the problem.
_MAX_ECHOED_NAME = 64
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
REDACTED_NAME = "<field name not shown>"


def _safe_loc_part(part: object) -> str | int:
    if isinstance(part, int):
        return part
    text = str(part)
    if len(text) > _MAX_ECHOED_NAME or _UNPRINTABLE.search(text):
        return REDACTED_NAME
    return text


_NAME_FIELDS = frozenset({"given_name", "family_name"})


def _issue_message(raw_loc: tuple[Any, ...], msg: str, kind: str) -> str:
    if kind == "json_invalid":
        return "The body is not valid JSON."
    # attributes: {"custom:x": ...} fails the key pattern; say what to send instead.
    names = [part for part in raw_loc if isinstance(part, str)]
    if "attributes" in names and any(part.startswith("custom:") for part in names):
        return "Send custom attributes without the `custom:` prefix (e.g. `test_attribute1`)."
    # A name's pattern is "at least one character that is not whitespace": say that, not
    # the character class.
    if kind == "string_pattern_mismatch" and names and names[-1] in _NAME_FIELDS:
        return "A name needs at least one character that is not whitespace."
    if kind == "string_pattern_mismatch" and names and names[-1] in {"group", "groups"}:
        return "A group name is 1 to 128 printable ASCII characters, without spaces" + (
            " or `/`." if raw_loc[0] == "path" else "."
        )
    return msg


def _validation_issues(exc: RequestValidationError) -> list[dict[str, Any]]:
    # Only loc/msg/type: pydantic's ``input`` and ``ctx`` can echo a password back.
    issues = []
    for err in exc.errors():
        raw_loc = tuple(err.get("loc", ()))
        loc = [_safe_loc_part(part) for part in raw_loc]
        kind = str(err.get("type", "value_error"))
        msg = _issue_message(raw_loc, str(err.get("msg", "invalid")), kind)
        issues.append({"loc": loc, "msg": msg, "type": kind})
    if not issues:  # `errors[]` is always there, and never empty
        issues.append({"loc": ["body"], "msg": "The request is not valid.", "type": "value_error"})
    return issues


async def _on_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.AuthSvcError)
    if exc.status >= 500:
        log.warning("request failed: %s (%s)", exc.code, exc.detail)
    return render_error(request, exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    return problem_response(
        request,
        status=422,
        code="validation_error",
        title="Validation failed",
        detail="The request is not valid; see errors.",
        extra={"errors": _validation_issues(exc)},
    )


# FastAPI's answer to a JSON body it cannot even decode (not UTF-8, nested too deep):
# DESIGN §2 makes any body that is not valid JSON a validation_error like the others.
_UNPARSABLE_BODY = "There was an error parsing the body"


def routes_at(app: Any, path: str) -> list[Any]:
    """The routes whose path template matches ``path``, whatever their method."""
    routes = getattr(getattr(app, "router", None), "routes", ())
    try:
        # Newer FastAPI keeps included routers wrapped: this flattens them (path_format,
        # methods, path_regex of each route as served).
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - older FastAPI: the routes are flat already
        views: Any = routes
    else:
        views = iter_route_contexts(routes)
    return [
        view
        for view in views
        if getattr(view, "path_regex", None) is not None and view.path_regex.match(path)
    ]


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (FastAPI has one route per method)."""
    methods: set[str] = set()
    for route in routes_at(request.app, request.scope["path"]):
        methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


def _is_mount(route: Any) -> bool:
    # Newer FastAPI wraps routes in a RouteContext (routes_at): look at the route inside.
    return isinstance(getattr(route, "original_route", route), Mount)


def _static_folder(request: Request) -> Response | None:
    """A browser asking for a mounted folder without its slash (``/dev/spa``) is sent to it:
    a 308 that says where, never an empty 307."""
    path: str = request.scope["path"]
    if request.method not in ("GET", "HEAD") or path.endswith("/"):
        return None
    if not any(_is_mount(route) for route in routes_at(request.app, path + "/")):
        return None
    target = path + "/" + (f"?{request.url.query}" if request.url.query else "")
    return PlainTextResponse(f"Moved to {target}\n", status_code=308, headers={"Location": target})


def _no_route_detail(request: Request) -> str:
    """What to do about a path no route serves: where the docs are, and the route meant
    when only a trailing slash is off (named by its template: the raw path is not echoed)."""
    docs = " The API is described at /docs." if request.app.openapi_url else ""
    path: str = request.scope["path"]
    if path == "/":
        return "This is the authsvc API; nothing is served at /." + docs
    other = path.rstrip("/") if path.endswith("/") else path + "/"
    for route in routes_at(request.app, other):
        template = (
            route.path
            if _is_mount(route)
            else getattr(route, "path_format", None) or getattr(route, "path", "")
        )
        if path.endswith("/"):
            return f"No route here: drop the trailing slash ({template}).{docs}"
        return f"No route here: add a trailing slash ({template}/).{docs}"
    return "No route serves this path." + docs


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return problem_response(
            request,
            status=422,
            code="validation_error",
            title="Validation failed",
            detail="The request is not valid; see errors.",
            extra={
                "errors": [
                    {"loc": ["body"], "msg": "The body is not valid JSON.", "type": "json_invalid"}
                ]
            },
        )
    if exc.status_code == 404 and exc.detail == "Not Found":
        folder = _static_folder(request)
        if folder is not None:
            return folder
        return problem_response(
            request,
            status=404,
            code="not_found",
            title="Not found",
            detail=_no_route_detail(request),
            headers=dict(exc.headers or {}),
        )
    code, title = _HTTP_CODES.get(exc.status_code, ("http_error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Starlette names only the first route that matched the path: list them all.
        headers["Allow"] = ", ".join(allowed_methods(request))
    return problem_response(
        request,
        status=exc.status_code,
        code=code,
        title=title,
        detail=detail,
        headers=headers,
    )


async def _on_database_down(request: Request, exc: Exception) -> JSONResponse:
    # Connection refused, lost or pool exhausted: the database, not the request, failed.
    log.warning("database unavailable: %s", type(exc).__name__)
    return render_error(
        request, errors.UpstreamUnavailableError("The database is unavailable; retry later.")
    )


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return render_error(request, errors.InternalError())


def install(app: FastAPI) -> None:
    app.add_exception_handler(errors.AuthSvcError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    for kind in db.UNAVAILABLE:
        app.add_exception_handler(kind, _on_database_down)
    app.add_exception_handler(Exception, _on_unexpected)
