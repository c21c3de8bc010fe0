"""Cookie transport for single-page apps (DESIGN §5).

A client that sends ``X-Token-Transport: cookie`` gets its refresh token in a ``__Host-``
cookie (HttpOnly, Secure, SameSite=Strict, Path=/) instead of in the JSON body, where
JavaScript — and so an XSS payload — can never read it. Using the cookie (refresh,
sign-out) requires ``X-CSRF: 1`` (a header another site cannot make a browser send without
a CORS preflight) and an ``Origin`` on the allowlist.
"""

from __future__ import annotations

from fastapi import Request, Response

from authsvc import errors
from authsvc.auth.schemas import TokenResult
from authsvc.config import Settings

COOKIE = "__Host-authsvc_refresh"


def wants_cookie(request: Request) -> bool:
    return request.headers.get("x-token-transport", "").strip().lower() == "cookie"


def deliver(
    request: Request,
    response: Response,
    result: TokenResult,
    settings: Settings,
    *,
    from_cookie: bool = False,
) -> TokenResult:
    """In cookie mode: move the refresh token from the body into the cookie.

    A token that came in the cookie always goes back in it, header or not: echoing it into
    a JSON body would hand the HttpOnly secret to any script on the page.
    """
    if not (from_cookie or wants_cookie(request)) or not result.refresh_token:
        return result
    response.set_cookie(
        COOKIE,
        result.refresh_token,
        max_age=settings.refresh_cookie_max_age_days * 24 * 3600,
        path="/",
        secure=True,
        httponly=True,
        samesite="strict",
    )
    return result.model_copy(update={"refresh_token": None})


def clear(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="strict")


def clearing_header() -> str:
    """The Set-Cookie value that deletes the cookie, for an error response to carry (the
    headers of an endpoint's injected ``Response`` are dropped when it raises)."""
    response = Response()
    clear(response)
    return response.headers["set-cookie"]


def cookie_token(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


def check_csrf(request: Request, settings: Settings) -> None:
    """The cookie is only honoured for a request that could not be forged cross-site."""
    if request.headers.get("x-csrf") != "1":
        raise errors.ForbiddenError("Cookie requests need the X-CSRF: 1 header.")
    origin = request.headers.get("origin")
    if not origin or origin.rstrip("/") not in settings.allowed_origins:
        raise errors.ForbiddenError(
            "This origin may not use the refresh cookie: the server lists the origins that may"
            " in AUTHSVC_CORS_ORIGINS."
        )
