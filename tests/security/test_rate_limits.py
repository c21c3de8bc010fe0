"""Rate limits (issue: Security, 1): per client IP and per identifier on every public route
that reaches Cognito or an invitation token; 429 `rate_limited` with `Retry-After`; a limited
request makes no Cognito call; an unknown identifier is limited exactly like a known one; a
locked-out victim can still reset; memory storage by default, Redis to share the limits
across instances, and a Redis outage fails open.

Per-identifier rules exist where the request names an account: sign-in (failures per
email), sign-up, resend and forgot (requests per email), confirm, reset and the MFA
challenge (wrong codes per email). Refresh and the invitation routes carry a 128-bit+
secret instead of an identifier and are limited per client IP.

Each test builds its own app with the limits on (`make_settings` turns them off for the rest
of the suite) and counts the calls the app's boto3 Cognito clients make.
"""

from __future__ import annotations

import hashlib
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from limits import RateLimitItem, parse_many
from limits.storage import MemoryStorage

from authsvc import errors
from authsvc.config import Settings
from authsvc.security import ratelimit
from tests.admin.support import enable_totp, totp_code
from tests.helpers import PASSWORD, Tokens, latest_code, new_email, sign_up
from tests.invitations.support import invite_and_link
from tests.security.conftest import SERVE_SIGN_IN_FAILURES, RedisKeys
from tests.security.support import (
    LimitedApp,
    ServeInstance,
    ThreadedServer,
    assert_limited,
    direct_user,
    limited_app,
    make_admin,
    random_ip,
    without_request_id,
)

SIGN_IN = "/v1/auth/sign-in"
SIGN_UP = "/v1/auth/sign-up"
CONFIRM = "/v1/auth/sign-up/confirm"
RESEND = "/v1/auth/sign-up/resend"
FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"
CHALLENGE = "/v1/auth/challenge"
REFRESH = "/v1/auth/refresh"
LOOKUP = "/v1/invitations/lookup"
ACCEPT = "/v1/invitations/accept"

WRONG_PASSWORD = "Wr0ng-Passw0rd!"
NEW_PASSWORD = "N3w-Passw0rd!x"
SMALL = 3  # the small limits tests configure: "3/minute"
MOTO_TOTP_SECRET = "asdfasdfasdf"  # every user's secret in the emulator (REFERENCE.md)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def unconfirmed_user(cognito: Any) -> str:
    """Signed up straight at the emulator (spends no rate-limit budget), not confirmed."""
    email = new_email()
    cognito.client.sign_up(
        ClientId=cognito.pool.client_id,
        Username=email,
        Password=PASSWORD,
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "family_name", "Value": "Tester"},
        ],
    )
    return email


def wrong_totp() -> str:
    """Six digits that are not the emulator's TOTP code for the previous, current or next step."""
    now = time.time()
    valid = {totp_code(MOTO_TOTP_SECRET, now + step) for step in (-30, 0, 30)}
    return next(c for c in ("000000", "111111", "222222", "333333") if c not in valid)


def sign_in_body(email: str, password: str = PASSWORD) -> dict[str, str]:
    return {"email": email, "password": password}


def headers_that_matter(response: Any) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in {"x-request-id", "retry-after"}}


def assert_same_refusal(first: Any, second: Any) -> None:
    """Two 429s that cannot be told apart (request id aside; Retry-After within a second)."""
    assert first.status_code == second.status_code == 429
    assert without_request_id(first.json()) == without_request_id(second.json())
    assert headers_that_matter(first) == headers_that_matter(second)
    assert abs(int(first.headers["retry-after"]) - int(second.headers["retry-after"])) <= 1


# --------------------------------------------------------------------------- per client IP


@dataclass(frozen=True)
class Route:
    """A limited route: its per-IP setting, a request that spends the caller's budget with
    a fresh identifier each time, and a legitimate request that would succeed."""

    name: str
    path: str
    setting: str
    filler: Callable[[], dict[str, Any]]
    filler_status: int
    prepare: Callable[[LimitedApp, Any], dict[str, Any]]
    ok_status: int
    reaches_cognito: bool = True


def _prepare_sign_in(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    return sign_in_body(direct_user(cognito))


def _prepare_sign_up(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    return {"email": new_email(), "password": PASSWORD, "family_name": "Tester"}


def _prepare_resend(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    email = new_email()
    assert sign_up(app.client, email).status_code == 202
    return {"email": email}


def _prepare_forgot(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    return {"email": direct_user(cognito)}


def _prepare_confirm(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    email = new_email()
    assert sign_up(app.client, email).status_code == 202
    return {"email": email, "code": latest_code(app.outbox, email, "sign_up_code")}


def _prepare_reset(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    email = direct_user(cognito)
    assert app.client.post(FORGOT, json={"email": email}).status_code == 202
    code = latest_code(app.outbox, email, "password_reset_code")
    return {"email": email, "code": code, "new_password": NEW_PASSWORD}


def _prepare_challenge(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    email = new_email()
    cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=email,
        TemporaryPassword="Tempor4ry-Passw0rd!",
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email},
            {"Name": "family_name", "Value": "Security"},
        ],
    )
    response = app.client.post(SIGN_IN, json=sign_in_body(email, "Tempor4ry-Passw0rd!"))
    assert response.status_code == 200, response.text
    challenge = response.json()
    assert challenge["challenge"] == "NEW_PASSWORD_REQUIRED", challenge
    return {
        "challenge": "NEW_PASSWORD_REQUIRED",
        "session": challenge["session"],
        "email": email,
        "new_password": NEW_PASSWORD,
    }


def _prepare_refresh(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    response = app.client.post(SIGN_IN, json=sign_in_body(direct_user(cognito)))
    assert response.status_code == 200, response.text
    return {"refresh_token": response.json()["refresh_token"]}


def _invitation_token(app: LimitedApp, cognito: Any) -> str:
    admin = make_admin(cognito)
    response = app.client.post(SIGN_IN, json=sign_in_body(admin))
    assert response.status_code == 200, response.text
    body = response.json()
    tokens = Tokens(body["access_token"], body["id_token"], body["refresh_token"])
    _, token = invite_and_link(app.client, tokens, app.outbox, new_email("invitee"))
    return token


def _prepare_lookup(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    return {"token": _invitation_token(app, cognito)}


def _prepare_accept(app: LimitedApp, cognito: Any) -> dict[str, Any]:
    return {"token": _invitation_token(app, cognito), "password": "Chosen-Passw0rd!"}


ROUTES = [
    Route(
        "sign_in",
        SIGN_IN,
        "rate_limit_sign_in_ip",
        lambda: sign_in_body(new_email(), WRONG_PASSWORD),
        401,
        _prepare_sign_in,
        200,
    ),
    Route(
        "sign_up",
        SIGN_UP,
        "rate_limit_email_ip",
        lambda: {"email": new_email(), "password": PASSWORD, "family_name": "Tester"},
        202,
        _prepare_sign_up,
        202,
    ),
    Route(
        "resend",
        RESEND,
        "rate_limit_email_ip",
        lambda: {"email": new_email()},
        202,
        _prepare_resend,
        202,
    ),
    Route(
        "forgot",
        FORGOT,
        "rate_limit_email_ip",
        lambda: {"email": new_email()},
        202,
        _prepare_forgot,
        202,
    ),
    Route(
        "confirm",
        CONFIRM,
        "rate_limit_verify_ip",
        lambda: {"email": new_email(), "code": "123456"},
        400,
        _prepare_confirm,
        204,
    ),
    Route(
        "reset",
        RESET,
        "rate_limit_verify_ip",
        lambda: {"email": new_email(), "code": "123456", "new_password": NEW_PASSWORD},
        400,
        _prepare_reset,
        204,
    ),
    Route(
        "challenge",
        CHALLENGE,
        "rate_limit_verify_ip",
        lambda: {
            "challenge": "NEW_PASSWORD_REQUIRED",
            "session": f"forged-{secrets.token_hex(16)}",
            "email": new_email(),
            "new_password": NEW_PASSWORD,
        },
        400,
        _prepare_challenge,
        200,
    ),
    Route(
        "refresh",
        REFRESH,
        "rate_limit_refresh_ip",
        lambda: {"refresh_token": f"garbage-{secrets.token_hex(16)}"},
        401,
        _prepare_refresh,
        200,
    ),
    Route(
        "invitation_lookup",
        LOOKUP,
        "rate_limit_invitation_ip",
        lambda: {"token": secrets.token_urlsafe(32)},
        400,
        _prepare_lookup,
        200,
        reaches_cognito=False,  # a database read only
    ),
    Route(
        "invitation_accept",
        ACCEPT,
        "rate_limit_invitation_ip",
        lambda: {"token": secrets.token_urlsafe(32), "password": "Chosen-Passw0rd!"},
        400,
        _prepare_accept,
        201,
    ),
]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: r.name)
def test_per_ip_limit_refuses_without_calling_cognito(route: Route, cognito, database_url):
    with limited_app(cognito, database_url, **{route.setting: f"{SMALL}/minute"}) as app:
        legitimate = route.prepare(app, cognito)
        attacker = app.peer("198.51.100.7")
        for _ in range(SMALL):
            response = attacker.post(route.path, json=route.filler())
            assert response.status_code == route.filler_status, response.text

        mark = app.calls.count
        limited = attacker.post(route.path, json=legitimate)
        assert_limited(limited, max_retry_after=60)
        assert app.calls.since(mark) == [], "a limited request reached Cognito"

        # The same request from another client address is served: the bucket is per IP.
        mark = app.calls.count
        served = app.peer("198.51.100.8").post(route.path, json=legitimate)
        assert served.status_code == route.ok_status, served.text
        if route.reaches_cognito:
            assert app.calls.since(mark), "the counter saw no call: it would prove nothing"


def test_limited_invitation_accept_leaves_the_invitation_usable(cognito, database_url):
    with limited_app(cognito, database_url, rate_limit_invitation_ip="1/minute") as app:
        body = _prepare_accept(app, cognito)
        attacker = app.peer("198.51.100.9")
        assert attacker.post(LOOKUP, json={"token": body["token"]}).status_code == 200
        assert_limited(attacker.post(ACCEPT, json=body), max_retry_after=60)
        # Nothing was claimed or created: the invitee can still accept from elsewhere.
        accepted = app.peer("198.51.100.10").post(ACCEPT, json=body)
        assert accepted.status_code == 201, accepted.text


def test_retry_after_is_honest(cognito, database_url):
    """Waiting the advertised Retry-After is enough to be served again."""
    with limited_app(cognito, database_url, rate_limit_email_ip="2/2 seconds") as app:
        client = app.peer("198.51.100.12")
        for _ in range(2):
            assert client.post(FORGOT, json={"email": new_email()}).status_code == 202
        limited = client.post(FORGOT, json={"email": new_email()})
        assert_limited(limited, max_retry_after=3)
        time.sleep(int(limited.headers["retry-after"]))
        assert client.post(FORGOT, json={"email": new_email()}).status_code == 202


# --------------------------------------------------------------------------- per identifier


@pytest.mark.parametrize("path", [SIGN_UP], ids=["sign_up"])
def test_per_identifier_limit_counts_across_addresses(path: str, cognito, database_url):
    """Requests for one email from many addresses share one budget; unknown = known.
    (Forgot-password and resend are counted per (email, address) since issue 11: below.)"""

    def body(email: str) -> dict[str, Any]:
        if path == SIGN_UP:
            return {"email": email, "password": PASSWORD, "family_name": "Tester"}
        return {"email": email}

    with limited_app(
        cognito,
        database_url,
        rate_limit_email_identifier=f"{SMALL}/minute",
        rate_limit_forgot_identifier=f"{SMALL}/minute",
    ) as app:
        # For resend, the case where a code really goes out: an unconfirmed account.
        known = unconfirmed_user(cognito) if path == RESEND else direct_user(cognito)
        unknown = new_email()

        refusals = {}
        for email in (known, unknown):
            for _ in range(SMALL):
                response = app.peer(random_ip()).post(path, json=body(email))
                assert response.status_code == 202, response.text
            mark = app.calls.count
            refusals[email] = app.peer(random_ip()).post(path, json=body(email))
            assert_limited(refusals[email], max_retry_after=60)
            assert app.calls.since(mark) == [], "a limited request reached Cognito"

        assert_same_refusal(refusals[known], refusals[unknown])
        # The lock is on that email only: another one goes through.
        assert app.peer(random_ip()).post(path, json=body(new_email())).status_code == 202


@pytest.mark.parametrize("path", [FORGOT, RESEND], ids=["forgot", "resend"])
def test_code_requests_are_limited_per_email_and_address(path: str, cognito, database_url):
    """Issue 11: one address's forgot-password (or resend) requests for an email have a
    budget of their own (unknown = known); another address, the owner's, is not affected."""
    with limited_app(
        cognito,
        database_url,
        rate_limit_forgot_identifier=f"{SMALL}/minute",
        rate_limit_resend_identifier=f"{SMALL}/minute",
    ) as app:
        # For resend, the case where a code really goes out: an unconfirmed account.
        known = unconfirmed_user(cognito) if path == RESEND else direct_user(cognito)
        unknown = new_email()
        refusals = {}
        for email in (known, unknown):
            attacker = app.peer(random_ip())
            for _ in range(SMALL):
                assert attacker.post(path, json={"email": email}).status_code == 202
            mark = app.calls.count
            refusals[email] = attacker.post(path, json={"email": email})
            assert_limited(refusals[email], max_retry_after=60)
            assert app.calls.since(mark) == [], "a limited request reached Cognito"
        assert_same_refusal(refusals[known], refusals[unknown])
        assert app.peer(random_ip()).post(path, json={"email": known}).status_code == 202


# --------------------------------------------------------------------------- sign-in failures


def test_wrong_passwords_lock_the_identifier_and_unknown_users_lock_the_same(cognito, database_url):
    """With the shipped defaults: 10 failures per (identifier, address) lock that address
    out of that identifier (issue 11: not every address — see test_lockout.py)."""
    allowed = 10
    with limited_app(cognito, database_url) as app:
        known, unknown = direct_user(cognito), new_email()
        guesser = app.peer(random_ip())
        failures: dict[str, list[Any]] = {known: [], unknown: []}
        for _ in range(allowed):
            for email in (known, unknown):
                response = guesser.post(SIGN_IN, json=sign_in_body(email, "Bad-1x"))
                failures[email].append(response)
        for a, b in zip(failures[known], failures[unknown], strict=True):
            assert a.status_code == b.status_code == 401, (a.text, b.text)
            assert a.json()["code"] == "invalid_credentials"
            assert without_request_id(a.json()) == without_request_id(b.json())

        mark = app.calls.count
        # The right password does not help that address once it is locked.
        locked_known = guesser.post(SIGN_IN, json=sign_in_body(known))
        locked_unknown = guesser.post(SIGN_IN, json=sign_in_body(unknown))
        assert app.calls.since(mark) == [], "a locked sign-in reached Cognito"
        assert_limited(locked_known, max_retry_after=15 * 60)
        assert_same_refusal(locked_known, locked_unknown)

        # Only that identifier is locked: another account signs in from the same address,
        # and the owner from another address.
        other = guesser.post(SIGN_IN, json=sign_in_body(direct_user(cognito)))
        assert other.status_code == 200, other.text
        owner = app.peer(random_ip()).post(SIGN_IN, json=sign_in_body(known))
        assert owner.status_code == 200, owner.text


def test_successful_sign_ins_are_not_failures(cognito, database_url):
    with limited_app(cognito, database_url, rate_limit_sign_in_failures=f"{SMALL}/minute") as app:
        email = direct_user(cognito)
        for _ in range(SMALL + 2):
            assert app.client.post(SIGN_IN, json=sign_in_body(email)).status_code == 200


def test_locked_victim_can_still_reset_the_password(cognito, database_url):
    with limited_app(cognito, database_url, rate_limit_sign_in_failures=f"{SMALL}/minute") as app:
        victim = direct_user(cognito)
        attacker = app.peer("198.51.100.20")
        for _ in range(SMALL):
            assert attacker.post(SIGN_IN, json=sign_in_body(victim, "Guess-1x")).status_code == 401
        # Since issue 11 the attacker's failures lock only the attacker's address: the
        # victim locks their own device with typos of their own.
        device = app.peer("198.51.100.21")
        for _ in range(SMALL):
            assert device.post(SIGN_IN, json=sign_in_body(victim, "Typo-1x")).status_code == 401
        assert_limited(device.post(SIGN_IN, json=sign_in_body(victim)), max_retry_after=60)

        assert device.post(FORGOT, json={"email": victim}).status_code == 202
        code = latest_code(app.outbox, victim, "password_reset_code")
        reset = device.post(
            RESET, json={"email": victim, "code": code, "new_password": NEW_PASSWORD}
        )
        assert reset.status_code == 204, reset.text
        # The reset proves who they are: the new password signs in at once.
        signed_in = device.post(SIGN_IN, json=sign_in_body(victim, NEW_PASSWORD))
        assert signed_in.status_code == 200, signed_in.text
        # ... while the attacker's address stays locked: its count is its own.
        assert_limited(
            attacker.post(SIGN_IN, json=sign_in_body(victim, "Guess-2x")), max_retry_after=60
        )


# --------------------------------------------------------------------------- wrong codes

CODE_TRIES = 5  # the issue: 5 wrong codes per identifier, then a new code is needed


def _spend_wrong_codes(app: LimitedApp, path: str, body: dict[str, Any]) -> None:
    for _ in range(CODE_TRIES):
        response = app.peer(random_ip()).post(path, json=body)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_code"


def test_five_wrong_sign_up_codes_then_a_new_code_is_needed(cognito, database_url):
    with limited_app(cognito, database_url) as app:  # shipped defaults
        email = new_email()
        assert sign_up(app.client, email).status_code == 202
        code = latest_code(app.outbox, email, "sign_up_code")
        _spend_wrong_codes(app, CONFIRM, {"email": email, "code": other_code(code)})

        mark = app.calls.count
        sixth = app.peer(random_ip()).post(CONFIRM, json={"email": email, "code": code})
        assert_limited(sixth, max_retry_after=24 * 3600)
        assert app.calls.since(mark) == []

        assert app.client.post(RESEND, json={"email": email}).status_code == 202
        new_code = latest_code(app.outbox, email, "sign_up_code")
        confirmed = app.peer(random_ip()).post(CONFIRM, json={"email": email, "code": new_code})
        assert confirmed.status_code == 204, confirmed.text
        assert app.client.post(SIGN_IN, json=sign_in_body(email)).status_code == 200


def test_five_wrong_reset_codes_then_a_new_code_is_needed(cognito, database_url):
    with limited_app(cognito, database_url) as app:
        email = direct_user(cognito)
        assert app.client.post(FORGOT, json={"email": email}).status_code == 202
        code = latest_code(app.outbox, email, "password_reset_code")
        body = {"email": email, "new_password": NEW_PASSWORD}
        _spend_wrong_codes(app, RESET, {**body, "code": other_code(code)})

        mark = app.calls.count
        sixth = app.peer(random_ip()).post(RESET, json={**body, "code": code})
        assert_limited(sixth, max_retry_after=3600)
        assert app.calls.since(mark) == []
        assert app.client.post(SIGN_IN, json=sign_in_body(email)).status_code == 200  # unchanged

        assert app.client.post(FORGOT, json={"email": email}).status_code == 202
        new_code = latest_code(app.outbox, email, "password_reset_code")
        reset = app.peer(random_ip()).post(RESET, json={**body, "code": new_code})
        assert reset.status_code == 204, reset.text
        assert app.client.post(SIGN_IN, json=sign_in_body(email, NEW_PASSWORD)).status_code == 200


@pytest.mark.parametrize("path", [CONFIRM, RESET], ids=["confirm", "reset"])
def test_wrong_codes_for_an_unknown_email_lock_the_same(path: str, cognito, database_url):
    with limited_app(cognito, database_url) as app:
        known = new_email()
        if path == CONFIRM:
            assert sign_up(app.client, known).status_code == 202
            code = latest_code(app.outbox, known, "sign_up_code")
        else:
            known = direct_user(cognito)
            assert app.client.post(FORGOT, json={"email": known}).status_code == 202
            code = latest_code(app.outbox, known, "password_reset_code")
        unknown = new_email()
        extra = {"new_password": NEW_PASSWORD} if path == RESET else {}
        wrong = other_code(code)

        answers: dict[str, list[Any]] = {known: [], unknown: []}
        for _ in range(CODE_TRIES + 1):
            for email in (known, unknown):
                body = {"email": email, "code": wrong, **extra}
                answers[email].append(app.peer(random_ip()).post(path, json=body))
        for a, b in zip(answers[known][:-1], answers[unknown][:-1], strict=True):
            assert a.status_code == b.status_code == 400
            assert without_request_id(a.json()) == without_request_id(b.json())
        # Sign-up codes live a day, reset codes an hour: so do their failure windows.
        assert_limited(answers[known][-1], max_retry_after=24 * 3600 if path == CONFIRM else 3600)
        assert_same_refusal(answers[known][-1], answers[unknown][-1])


def test_five_wrong_mfa_codes_lock_the_challenge(cognito, database_url):
    with limited_app(cognito, database_url) as app:
        email = direct_user(cognito)
        signed_in = app.client.post(SIGN_IN, json=sign_in_body(email))
        assert signed_in.status_code == 200, signed_in.text
        enable_totp(cognito, signed_in.json()["access_token"])

        def challenge() -> dict[str, Any]:
            response = app.client.post(SIGN_IN, json=sign_in_body(email))
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["challenge"] == "SOFTWARE_TOKEN_MFA", body
            return {"challenge": "SOFTWARE_TOKEN_MFA", "session": body["session"], "email": email}

        for _ in range(CODE_TRIES):
            response = app.peer(random_ip()).post(
                CHALLENGE, json={**challenge(), "code": wrong_totp()}
            )
            if response.status_code == 400 and response.json()["code"] == "invalid_session":
                pytest.fail("the emulator refused the session, not the code")
            assert response.status_code == 400, response.text
            assert response.json()["code"] == "invalid_code"

        body = challenge()
        mark = app.calls.count
        sixth = app.peer(random_ip()).post(CHALLENGE, json={**body, "code": "123456"})
        assert_limited(sixth, max_retry_after=3600)
        assert app.calls.since(mark) == []


# --------------------------------------------------------------------------- defaults


def most_allowed(items: list[RateLimitItem], window_s: int) -> int:
    """The most events the rule lets through in any window of ``window_s`` seconds."""
    return min(item.amount * -(-window_s // item.get_expiry()) for item in items)


def _defaults() -> Settings:
    return Settings(
        cognito_user_pool_id="us-east-1_defaults", cognito_client_id="c", secret_key="x" * 16
    )


@pytest.mark.parametrize(
    ("setting", "amount", "window_s"),
    [
        ("rate_limit_sign_in_failures", 10, 15 * 60),  # 10 per (identifier, address) / 15 min
        ("rate_limit_sign_in_failures", 100, 3600),  # 100 per hour (OWASP's ceiling too)
        ("rate_limit_sign_in_identifier_failures", 100, 3600),  # the per-identifier ceiling
        ("rate_limit_forgot_identifier", 5, 15 * 60),  # per (email, address)
        ("rate_limit_email_ip", 30, 5 * 60),  # sign-up, forgot, resend: 30 per 5 min per IP
        ("rate_limit_code_failures", 5, 3600),  # 5 wrong codes within a reset code's life (1 h)
        ("rate_limit_sign_up_code_failures", 5, 24 * 3600),  # … within a sign-up code's (24 h)
    ],
)
def test_default_is_no_looser_than_the_issue(setting: str, amount: int, window_s: int):
    items = parse_many(getattr(_defaults(), setting))
    assert most_allowed(items, window_s) <= amount, (setting, getattr(_defaults(), setting))


def test_most_allowed_counts_short_windows_repeating():
    assert most_allowed(parse_many("10/15 minutes;100/hour"), 3600) == 40
    assert most_allowed(parse_many("5/minute"), 300) == 25
    assert most_allowed(parse_many("5/day"), 3600) == 5


def test_defaults_cover_every_rule_the_issue_names():
    defaults = _defaults()
    assert defaults.rate_limits_enabled is True
    assert defaults.redis_url is None  # memory storage unless AUTHSVC_REDIS_URL is set
    assert isinstance(ratelimit.RateLimits(defaults).storage, MemoryStorage)
    for setting in (
        "rate_limit_sign_in_ip",
        "rate_limit_email_identifier",
        "rate_limit_verify_ip",
        "rate_limit_refresh_ip",
        "rate_limit_invitation_ip",
    ):
        assert parse_many(getattr(defaults, setting)), setting


def test_sign_up_and_resend_spam_cannot_block_a_password_reset(cognito, database_url):
    """An attacker spending the victim's sign-up/resend budget leaves forgot-password alone
    (the victim of a sign-in lockout must still be able to reset)."""
    with limited_app(
        cognito,
        database_url,
        rate_limit_email_identifier=f"{SMALL}/minute",
        rate_limit_resend_identifier=f"{SMALL}/minute",
    ) as app:
        victim = direct_user(cognito)
        spammer = app.peer(random_ip())
        for _ in range(SMALL):
            spammer.post(RESEND, json={"email": victim})
            app.peer(random_ip()).post(
                SIGN_UP, json={"email": victim, "password": PASSWORD, "family_name": "Tester"}
            )
        assert_limited(spammer.post(RESEND, json={"email": victim}), max_retry_after=60)
        assert_limited(
            app.peer(random_ip()).post(
                SIGN_UP, json={"email": victim, "password": PASSWORD, "family_name": "Tester"}
            ),
            max_retry_after=60,
        )
        forgot = app.peer(random_ip()).post(FORGOT, json={"email": victim})
        assert forgot.status_code == 202, forgot.text


# --------------------------------------------------------------------------- client address


def test_ip_limits_count_per_forwarded_client_behind_a_trusted_proxy(cognito, database_url):
    with (
        limited_app(
            cognito,
            database_url,
            trusted_proxies=["127.0.0.1"],
            rate_limit_email_ip=f"{SMALL}/minute",
        ) as app,
        ThreadedServer(app.app) as server,
        httpx.Client(base_url=server.base_url, timeout=10) as http,
    ):

        def forgot(client_ip: str) -> httpx.Response:
            return http.post(
                FORGOT, json={"email": new_email()}, headers={"X-Forwarded-For": client_ip}
            )

        for _ in range(SMALL):
            assert forgot("198.51.100.31").status_code == 202
        mark = app.calls.count
        assert_limited(forgot("198.51.100.31"), max_retry_after=60)
        assert app.calls.since(mark) == []
        # A second client behind the same proxy has its own bucket.
        assert forgot("198.51.100.32").status_code == 202
        # Hops a client writes itself in front of the proxy's own entry change nothing.
        spoofed = http.post(
            FORGOT,
            json={"email": new_email()},
            headers={"X-Forwarded-For": "203.0.113.99, 198.51.100.31"},
        )
        assert_limited(spoofed, max_retry_after=60)


def test_forwarded_for_from_an_untrusted_peer_is_ignored(cognito, database_url):
    """A client that is not a trusted proxy cannot pick a new address per request."""
    with (
        limited_app(
            cognito,
            database_url,
            trusted_proxies=["127.0.0.1"],
            rate_limit_email_ip=f"{SMALL}/minute",
        ) as app,
        ThreadedServer(app.app) as server,
        # The connection comes from 127.0.0.2: loopback, but not the trusted proxy.
        httpx.Client(
            base_url=server.base_url,
            timeout=10,
            transport=httpx.HTTPTransport(local_address="127.0.0.2"),
        ) as http,
    ):
        answers = [
            http.post(
                FORGOT,
                json={"email": new_email()},
                headers={"X-Forwarded-For": f"198.51.100.{40 + i}"},
            )
            for i in range(SMALL + 1)
        ]
        assert [a.status_code for a in answers[:SMALL]] == [202] * SMALL
        assert_limited(answers[SMALL], max_retry_after=60)


# --------------------------------------------------------------------------- storage


def test_redis_storage_enforces_the_limit_and_stores_no_email(
    cognito, database_url, redis_url, redis_keys: RedisKeys
):
    email = None
    with limited_app(
        cognito,
        database_url,
        redis_url=redis_url,
        rate_limit_sign_in_failures=f"{SMALL}/minute",
    ) as app:
        email = direct_user(cognito)
        ip = random_ip()
        redis_keys.track(email, ip)
        client = app.peer(ip)
        for _ in range(SMALL):
            assert client.post(SIGN_IN, json=sign_in_body(email, "Bad-1x")).status_code == 401
        mark = app.calls.count
        assert_limited(client.post(SIGN_IN, json=sign_in_body(email)), max_retry_after=60)
        assert app.calls.since(mark) == []
        assert app.state.limits.storage_errors == 0

    # The counters live in Redis (so they outlive this app), keyed by HMACs only (issue 11:
    # with AUTHSVC_SECRET_KEY; a bare SHA-256 could be checked against a list of emails).
    keys = redis_keys.keys_for(email)
    assert keys and all(k.startswith(b"authsvc:") for k in keys), keys
    assert not [k for k in redis_keys.client.scan_iter(match=f"*{email}*")]
    for value in (email, f"{email}\x1f{ip}", ip):
        bare = hashlib.sha256(value.encode()).hexdigest()[:32]
        assert not list(redis_keys.client.scan_iter(match=f"*{bare}*")), value

    # A new app (another instance) on the same Redis sees the lock.
    with limited_app(
        cognito,
        database_url,
        redis_url=redis_url,
        rate_limit_sign_in_failures=f"{SMALL}/minute",
    ) as other:
        assert_limited(other.peer(ip).post(SIGN_IN, json=sign_in_body(email)), max_retry_after=60)


def test_two_serve_instances_share_the_limit_through_redis(
    cognito, serve_pair: tuple[ServeInstance, ServeInstance], redis_keys: RedisKeys
):
    a, b = serve_pair
    email = direct_user(cognito)
    redis_keys.track(email)
    with a.client() as on_a, b.client() as on_b:
        instances = [on_a, on_b]
        for i in range(SERVE_SIGN_IN_FAILURES):
            response = instances[i % 2].post(SIGN_IN, json=sign_in_body(email, "Bad-1x"))
            assert response.status_code == 401, response.text
        # Two failures on each instance: each alone is under the limit, together they are not.
        for client in instances:
            assert_limited(client.post(SIGN_IN, json=sign_in_body(email)), max_retry_after=60)


def test_unreachable_redis_fails_open(cognito, database_url, caplog):
    """An outage of the limiter's storage must not lock every user out: requests are
    served unlimited (and the outage is logged)."""
    with limited_app(
        cognito,
        database_url,
        redis_url="redis://127.0.0.1:1/0",
        rate_limit_sign_in_failures="1/minute",
        rate_limit_sign_in_ip="1/minute",
        rate_limit_email_ip="1/minute",
        rate_limit_email_identifier="1/minute",
    ) as app:
        email = direct_user(cognito)
        started = time.monotonic()
        for _ in range(3):
            assert app.client.post(SIGN_IN, json=sign_in_body(email, "Bad-1x")).status_code == 401
        signed_in = app.client.post(SIGN_IN, json=sign_in_body(email))
        assert signed_in.status_code == 200, signed_in.text
        for _ in range(3):
            assert app.client.post(FORGOT, json={"email": email}).status_code == 202
        assert time.monotonic() - started < 10, "every request waited on the dead storage"
        assert app.state.limits.storage_errors > 0
        assert any(
            "rate-limit storage unavailable" in record.getMessage() for record in caplog.records
        )


def test_hung_redis_does_not_stall_every_request():
    """A Redis that accepts connections and never answers (a hung server, a black hole):
    the first check pays one short timeout, the next ones none; all fail open."""
    with socket.socket() as hung:
        hung.bind(("127.0.0.1", 0))
        hung.listen(64)
        url = f"redis://127.0.0.1:{hung.getsockname()[1]}/0"
        limits = ratelimit.RateLimits(_defaults().model_copy(update={"redis_url": url}))
        started = time.monotonic()
        limits.hit("sign_in_ip", "198.51.100.70")
        first = time.monotonic() - started
        assert first < 2.0, f"the first request waited {first:.1f}s on the hung storage"
        started = time.monotonic()
        for _ in range(3):  # what a failed sign-in does: hit, check, fail
            limits.hit("sign_in_ip", "198.51.100.70")
            with limits.failures(
                "sign_in_failures", "x@example.com", errors.InvalidCredentialsError
            ):
                pass
            limits.fail("sign_in_failures", "x@example.com")
        rest = time.monotonic() - started
        assert rest < 0.5, f"later requests still waited on the storage ({rest:.1f}s)"
        assert limits.storage_errors == 1


def test_limits_resume_when_the_storage_is_back(redis_url, redis_keys: RedisKeys, monkeypatch):
    monkeypatch.setattr(ratelimit, "STORAGE_RETRY_SECONDS", 0.2)
    settings = _defaults().model_copy(
        update={"redis_url": redis_url, "rate_limit_email_identifier": "2/minute"}
    )
    limits = ratelimit.RateLimits(settings)
    key = new_email()
    redis_keys.track(key)
    real_hit = limits.limiter.hit
    broken: list[int] = []

    def outage(*args: Any, **kwargs: Any) -> bool:
        broken.append(1)
        raise ConnectionError("storage down")

    monkeypatch.setattr(limits.limiter, "hit", outage)
    for _ in range(5):  # fail open, and touch the broken storage only once
        limits.hit("email_identifier", key)
    assert len(broken) == 1

    monkeypatch.setattr(limits.limiter, "hit", real_hit)
    time.sleep(0.3)
    limits.hit("email_identifier", key)
    limits.hit("email_identifier", key)
    with pytest.raises(errors.RateLimitedError):
        limits.hit("email_identifier", key)
