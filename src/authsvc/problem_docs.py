"""What a problem looks like, and how the OpenAPI document shows them: the problem models,
the HTTP layer's codes, a route's ``responses=``, and the examples ``complete_document``
adds for every code (taken from the error classes, so they cannot drift from them)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from authsvc import errors

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


def responses(*kinds: type[errors.AuthSvcError]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` for a route: one entry per status, codes listed."""
    by_status: dict[int, list[type[errors.AuthSvcError]]] = {}
    every: tuple[type[errors.AuthSvcError], ...] = (
        *kinds,
        errors.ValidationError,
        errors.InternalError,
    )
    for kind in every:
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
