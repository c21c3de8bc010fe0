"""One renderer: every error becomes RFC 9457 ``application/problem+json`` (DESIGN §2)."""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Mount

from authsvc import db, errors

log = logging.getLogger("authsvc.errors")

PROBLEM_MEDIA_TYPE = "application/problem+json"


class Problem(BaseModel):
    """An RFC 9457 problem document. Clients branch on ``code``."""

    type: str = Field(examples=["urn:authsvc:problem:invalid_credentials"])
    title: str
    status: int
    detail: str
    code: str = Field(description="Stable snake_case error code.")
    request_id: str | None = None


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class ValidationProblem(Problem):
    """A problem that names the fields at fault: `validation_error` (the schema), and the
    400s for what only the pool can refuse (`unknown_attribute`, `attribute_required`,
    `invalid_attribute_value`, `unknown_group`)."""

    errors: list[ValidationIssue] = Field(default_factory=list)


# Status codes the HTTP layer itself produces, outside the domain table.
_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "Bad request"),
    401: ("not_authenticated", "Not authenticated"),
    403: ("forbidden", "Forbidden"),
    404: ("not_found", "Not found"),
    405: ("method_not_allowed", "Method not allowed"),
    406: ("not_acceptable", "Not acceptable"),
    413: ("payload_too_large", "Payload too large"),
    415: ("unsupported_media_type", "Unsupported media type"),
    429: ("rate_limited", "Too many requests"),
}


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


def _issue_message(raw_loc: tuple[Any, ...], msg: str, kind: str) -> str:
    if kind == "json_invalid":
        return "The body is not valid JSON."
    # attributes: {"custom:x": ...} fails the key pattern; say what to send instead.
    names = [part for part in raw_loc if isinstance(part, str)]
    if "attributes" in names and any(part.startswith("custom:") for part in names):
        return "Send custom attributes without the `custom:` prefix (e.g. `test_attribute1`)."
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


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
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


def responses(*kinds: type[errors.AuthSvcError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route: one entry per status, codes listed."""
    by_status: dict[int, list[type[errors.AuthSvcError]]] = {}
    for kind in (*kinds, errors.ValidationError, errors.InternalError):
        by_status.setdefault(kind.status, []).append(kind)
    out: dict[int | str, dict[str, Any]] = {}
    for status, group in sorted(by_status.items()):
        codes = ", ".join(sorted({k.code for k in group}))
        model = ValidationProblem if any(k.carries_errors for k in group) else Problem
        out[status] = {
            "model": model,
            "description": f"Problem: `{codes}`",
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
            },
        }
    return out


# What the HTTP layer answers before a route runs (middleware.py): any request that may
# carry a body can be refused for it, whatever the route.
_BODY_METHODS = ("post", "put", "patch", "delete")
_TRANSPORT_PROBLEMS = (
    (400, "bad_request"),
    (413, "payload_too_large"),
    (415, "unsupported_media_type"),
)


def _problem_entry(status: int, codes: list[str]) -> dict[str, Any]:
    with_errors = _codes_with_errors()
    model = ValidationProblem if any(code in with_errors for code in codes) else Problem
    return {
        "description": "Problem: `" + ", ".join(sorted(set(codes))) + "`",
        "content": {
            PROBLEM_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }


def _documented_codes(entry: dict[str, Any]) -> list[str]:
    if PROBLEM_MEDIA_TYPE not in entry.get("content", {}):
        return []
    description = str(entry.get("description", ""))
    _, _, rest = description.partition("`")
    return [code.strip() for code in rest.partition("`")[0].split(",") if code.strip()]


def _known_problems() -> dict[str, tuple[int, str, str]]:
    """Every code the service answers -> (status, title, default detail), from the error
    classes themselves (and the HTTP layer's table), so examples cannot drift from them."""
    known = {code: (status, title, title + ".") for status, (code, title) in _HTTP_CODES.items()}
    known["payload_too_large"] = (413, "Payload too large", "The body is larger than 65536 bytes.")
    known["unsupported_media_type"] = (
        415,
        "Unsupported media type",
        "Send the body as application/json.",
    )
    for kind in _error_kinds():
        known[kind.code] = (kind.status, kind.title, kind.default_detail)
    return known


def _error_kinds() -> list[type[errors.AuthSvcError]]:
    """Every error class that states its own code (a subclass that only narrows the detail,
    or a base such as FieldProblemError, answers with a code stated elsewhere)."""
    kinds = []
    pending: list[type[errors.AuthSvcError]] = [errors.AuthSvcError]
    while pending:
        kind = pending.pop()
        pending.extend(kind.__subclasses__())
        if "code" in vars(kind):
            kinds.append(kind)
    return kinds


def _codes_with_errors() -> set[str]:
    return {kind.code for kind in _error_kinds() if kind.carries_errors}


_EXAMPLE_REQUEST_ID = "5f0c6b1e9a3d4c2b8e7f6a5d4c3b2a19"


def problem_example(code: str, status: int) -> dict[str, Any]:
    """The problem document a client really gets for ``code`` (default detail)."""
    known = _known_problems()
    if code not in known or known[code][0] != status:
        raise ValueError(f"no {status} problem with code {code!r}: document the real ones")
    _, title, detail = known[code]
    if code == "rate_limited":
        detail = errors.RateLimitedError(60).detail
    example: dict[str, Any] = {
        "type": f"urn:authsvc:problem:{code}",
        "title": title,
        "status": status,
        "detail": detail,
        "code": code,
        "request_id": _EXAMPLE_REQUEST_ID,
    }
    if code == "validation_error":
        example["detail"] = "The request is not valid; see errors."
        example["errors"] = [{"loc": ["body", "email"], "msg": "Field required", "type": "missing"}]
    elif code in _FIELD_EXAMPLES:
        detail, loc, msg = _FIELD_EXAMPLES[code]
        example["detail"] = detail
        example["errors"] = [{"loc": loc, "msg": msg, "type": code}]
    return example


# What the pool-side field problems really say (detail, then one errors[] entry).
_FIELD_EXAMPLES: dict[str, tuple[str, list[str | int], str]] = {
    "unknown_attribute": (
        "The user pool has no attribute nickname_2, or this app may not write it.",
        ["body", "attributes", "nickname_2"],
        "The user pool has no attribute nickname_2, or this app may not write it.",
    ),
    "attribute_required": (
        "The user pool requires family_name.",
        ["body", "family_name"],
        "The user pool requires family_name.",
    ),
    "invalid_attribute_value": (
        "test_attribute1 takes at most 256 characters.",
        ["body", "attributes", "test_attribute1"],
        "test_attribute1 takes at most 256 characters.",
    ),
    "unknown_group": (
        "The user pool has no group named editors.",
        ["body", "groups", 0],
        "The user pool has no group named editors.",
    ),
}


def _with_examples(status: int, entry: dict[str, Any]) -> None:
    content = entry.get("content", {})
    media = content.get(PROBLEM_MEDIA_TYPE)
    if media is None:
        return
    # Problems are application/problem+json only (a `model=` adds an application/json twin).
    for other in [name for name in content if name != PROBLEM_MEDIA_TYPE]:
        del content[other]
    codes = _documented_codes(entry)
    if not codes:
        return
    media.pop("example", None)
    examples = media.setdefault("examples", {})
    for code in codes:  # a route's own example (e.g. /readyz's, with `checks`) stays
        examples.setdefault(code, {"summary": code, "value": problem_example(code, status)})


def complete_document(document: dict[str, Any]) -> dict[str, Any]:
    """Add what every route can answer but no route declares (idempotent).

    - 400/413/415 problems on every method that can carry a body (the middleware's checks);
    - FastAPI's default 422 (``HTTPValidationError``, application/json) replaced by the
      problem document it really is, and its schemas dropped;
    - every problem response application/problem+json only, with one real example per code.
    """
    for path_item in document.get("paths", {}).values():
        for method, operation in path_item.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            answers: dict[str, Any] = operation["responses"]
            if "422" in answers and PROBLEM_MEDIA_TYPE not in answers["422"].get("content", {}):
                answers["422"] = _problem_entry(422, ["validation_error"])
            if method in _BODY_METHODS:
                for status, code in _TRANSPORT_PROBLEMS:
                    codes = _documented_codes(answers.get(str(status), {}))
                    answers[str(status)] = _problem_entry(status, [*codes, code])
            for status_text, entry in answers.items():
                if status_text.isdigit() and int(status_text) >= 400:
                    _with_examples(int(status_text), entry)
            operation["responses"] = dict(sorted(answers.items()))
    schemas = document.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return document
