"""Issue 11, item 1: failures from other addresses never block the owner.

An attacker with several addresses (forwarded by a trusted proxy, as behind the load
balancer) spends wrong passwords, forgot-password requests and wrong reset codes on a
victim's email. The victim, from an address of their own, still signs in with the right
password, still gets a reset code, and still resets with it; every attacker address that
has failed for that email waits once the email's ceiling is full, so distributed guessing
stalls at the ceiling plus two guesses per fresh address.

Item 9: a forgot/resend that sends no code (Cognito's per-user limit refused it) buys no
new code guesses.

Each test builds its own app with the limits on and counts the calls its Cognito clients
make (a refused request makes none).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError
from pydantic import SecretStr, ValidationError

from authsvc import errors
from authsvc.cognito.errors import translate
from authsvc.config import Settings
from authsvc.security.ratelimit import OVER_CEILING_ALLOWANCE, RateLimits
from tests.helpers import PASSWORD, latest_code, new_email, sign_up
from tests.security.support import (
    LimitedApp,
    ThreadedServer,
    assert_limited,
    direct_user,
    limited_app,
    random_ip,
)

SIGN_IN = "/v1/auth/sign-in"
FORGOT = "/v1/auth/password/forgot"
RESET = "/v1/auth/password/reset"
CONFIRM = "/v1/auth/sign-up/confirm"
RESEND = "/v1/auth/sign-up/resend"
NEW_PASSWORD = "N3w-Passw0rd!x"

PAIR = 3  # failures (or forgot requests) one address may spend on one email
CEILING = 8  # failures (or forgot requests) for one email from all addresses
ATTACKERS = [f"203.0.113.{i}" for i in range(10, 14)]  # 4 x 3 = 12 > CEILING
OWNER = "198.51.100.77"


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@contextmanager
def behind_proxy(
    cognito: Any, database_url: str, **overrides: Any
) -> Iterator[tuple[LimitedApp, httpx.Client]]:
    """The app behind a real uvicorn that trusts 127.0.0.1 as its proxy: each request's
    client address is its X-Forwarded-For."""
    with (
        limited_app(cognito, database_url, trusted_proxies=["127.0.0.1"], **overrides) as app,
        ThreadedServer(app.app) as server,
        httpx.Client(base_url=server.base_url, timeout=20) as http,
    ):
        yield app, http


def post(http: httpx.Client, ip: str, path: str, body: dict[str, Any]) -> httpx.Response:
    return http.post(path, json=body, headers={"X-Forwarded-For": ip})


class TestTargetedLockout:
    def test_others_failures_never_block_the_owner(self, cognito, database_url):
        with behind_proxy(
            cognito,
            database_url,
            rate_limit_sign_in_failures=f"{PAIR}/minute",
            rate_limit_sign_in_identifier_failures=f"{CEILING}/minute",
            rate_limit_forgot_identifier=f"{PAIR}/minute",
            rate_limit_forgot_ceiling=f"{CEILING}/minute",
        ) as (app, http):
            victim = direct_user(cognito)
            wrong = {"email": victim, "password": "Guess-1x-wrong"}

            # -- wrong passwords from four addresses ------------------------------------
            guesses = 0
            for ip in ATTACKERS:
                while True:
                    mark = app.calls.count
                    response = post(http, ip, SIGN_IN, wrong)
                    if response.status_code == 429:
                        assert app.calls.since(mark) == [], "a refused guess reached Cognito"
                        break
                    assert response.status_code == 401, response.text
                    guesses += 1
            # Each address spent its own allowance until the email's ceiling filled up (3 + 3
            # + 2); the fourth address came after that and got OVER_CEILING_ALLOWANCE tries.
            assert guesses == CEILING + OVER_CEILING_ALLOWANCE, guesses
            for ip in ATTACKERS:  # every one of them now waits, however often it comes back
                assert_limited(post(http, ip, SIGN_IN, wrong), max_retry_after=60)
            # So does any fresh attacker address, after its two guesses.
            fresh = "203.0.113.99"
            for _ in range(OVER_CEILING_ALLOWANCE):
                assert post(http, fresh, SIGN_IN, wrong).status_code == 401
            mark = app.calls.count
            assert_limited(post(http, fresh, SIGN_IN, wrong), max_retry_after=60)
            assert app.calls.since(mark) == []

            # The owner's right password, from their own address, still works.
            signed_in = post(http, OWNER, SIGN_IN, {"email": victim, "password": PASSWORD})
            assert signed_in.status_code == 200, signed_in.text

            # -- forgot-password requests from the same addresses -----------------------
            requests = 0
            for ip in ATTACKERS:
                while post(http, ip, FORGOT, {"email": victim}).status_code == 202:
                    requests += 1
                assert_limited(post(http, ip, FORGOT, {"email": victim}), max_retry_after=60)
            assert requests == CEILING + OVER_CEILING_ALLOWANCE, requests
            # The owner still gets a code.
            assert post(http, OWNER, FORGOT, {"email": victim}).status_code == 202
            code = latest_code(app.outbox, victim, "password_reset_code")

            # -- five wrong reset codes burn that code, not the owner's recovery ---------
            bad = {"email": victim, "code": other_code(code), "new_password": NEW_PASSWORD}
            for ip in ATTACKERS + ["203.0.113.50"]:
                answer = post(http, ip, RESET, bad)
                assert answer.status_code == 400, answer.text
                assert answer.json()["code"] == "invalid_code"
            mark = app.calls.count
            assert_limited(post(http, OWNER, RESET, {**bad, "code": code}), max_retry_after=3600)
            assert app.calls.since(mark) == []
            # ... so the owner asks for a new code from their address and uses it.
            assert post(http, OWNER, FORGOT, {"email": victim}).status_code == 202
            new_code = latest_code(app.outbox, victim, "password_reset_code")
            reset = post(http, OWNER, RESET, {**bad, "code": new_code})
            assert reset.status_code == 204, reset.text
            signed_in = post(http, OWNER, SIGN_IN, {"email": victim, "password": NEW_PASSWORD})
            assert signed_in.status_code == 200, signed_in.text

    def test_others_cannot_keep_the_owner_from_confirming_a_sign_up(self, cognito, database_url):
        """The same for sign-up codes: others' resends and wrong codes leave the owner a
        new code, from their own address, and the means to use it."""
        with behind_proxy(
            cognito,
            database_url,
            rate_limit_resend_identifier=f"{PAIR}/minute",
            rate_limit_resend_ceiling=f"{CEILING}/minute",
        ) as (app, http):
            owner = new_email()
            assert sign_up(app.client, owner).status_code == 202
            requests = 0
            for ip in ATTACKERS:
                while post(http, ip, RESEND, {"email": owner}).status_code == 202:
                    requests += 1
            assert requests == CEILING + OVER_CEILING_ALLOWANCE, requests
            code = latest_code(app.outbox, owner, "sign_up_code")
            for ip in ATTACKERS + ["203.0.113.51"]:
                wrong = post(http, ip, CONFIRM, {"email": owner, "code": other_code(code)})
                assert wrong.status_code == 400, wrong.text
            assert_limited(
                post(http, OWNER, CONFIRM, {"email": owner, "code": code}), max_retry_after=86400
            )
            assert post(http, OWNER, RESEND, {"email": owner}).status_code == 202
            new_code = latest_code(app.outbox, owner, "sign_up_code")
            confirmed = post(http, OWNER, CONFIRM, {"email": owner, "code": new_code})
            assert confirmed.status_code == 204, confirmed.text

    def test_an_address_that_failed_itself_waits_over_the_ceiling(self, cognito, database_url):
        """The ceiling is a wait, not a lock: it refuses only addresses with failures of
        their own for that email, and it lifts as the ceiling's window moves on."""
        with limited_app(
            cognito,
            database_url,
            rate_limit_sign_in_failures="5/minute",
            rate_limit_sign_in_identifier_failures="3/5 seconds",
        ) as app:
            email = direct_user(cognito)
            wrong = {"email": email, "password": "Guess-1x-wrong"}
            right = {"email": email, "password": PASSWORD}
            typo = app.peer(random_ip())
            for _ in range(OVER_CEILING_ALLOWANCE):  # the owner's own typos
                assert typo.post(SIGN_IN, json=wrong).status_code == 401
            assert app.peer(random_ip()).post(SIGN_IN, json=wrong).status_code == 401
            waiting = typo.post(SIGN_IN, json=right)
            assert_limited(waiting, max_retry_after=5)
            # An address with no failures of its own is served at once.
            clean = app.peer(random_ip()).post(SIGN_IN, json=right)
            assert clean.status_code == 200, clean.text
            # Waiting the advertised time is enough.
            time.sleep(int(waiting.headers["retry-after"]))
            again = typo.post(SIGN_IN, json={"email": email, "password": PASSWORD})
            assert again.status_code == 200, again.text

    def test_the_per_address_rule_stops_one_address_spraying_many_emails(
        self, cognito, database_url
    ):
        with limited_app(
            cognito, database_url, rate_limit_sign_in_failures_ip=f"{PAIR}/minute"
        ) as app:
            sprayer = app.peer("198.51.100.90")
            for _ in range(PAIR):
                body = {"email": new_email(), "password": "Guess-1x-wrong"}
                assert sprayer.post(SIGN_IN, json=body).status_code == 401
            mark = app.calls.count
            body = {"email": direct_user(cognito), "password": PASSWORD}
            assert_limited(sprayer.post(SIGN_IN, json=body), max_retry_after=60)
            assert app.calls.since(mark) == []
            assert app.peer("198.51.100.91").post(SIGN_IN, json=body).status_code == 200

    def test_ipv6_clients_are_counted_per_64(self, cognito, database_url):
        """Rotating through one /64 gives no fresh allowance."""
        with behind_proxy(cognito, database_url, rate_limit_sign_in_failures=f"{PAIR}/minute") as (
            app,
            http,
        ):
            email = direct_user(cognito)
            wrong = {"email": email, "password": "Guess-1x-wrong"}
            for i in range(PAIR):
                assert post(http, f"2001:db8:5:6::{i + 1:x}", SIGN_IN, wrong).status_code == 401
            assert_limited(post(http, "2001:db8:5:6:ffff::1", SIGN_IN, wrong), max_retry_after=60)
            # Another /64 is another client.
            right = {"email": email, "password": PASSWORD}
            assert post(http, "2001:db8:5:7::1", SIGN_IN, right).status_code == 200


# --------------------------------------------------------------------------- item 9


@contextmanager
def cognito_refuses(app: LimitedApp, operation: str) -> Iterator[list[bool]]:
    """Cognito's per-user limit (LimitExceededException, which only real accounts reach)
    answers ``operation``: no code is sent."""
    client = app.state.gateway.client
    original = getattr(client, operation)
    calls: list[bool] = []

    def limited(**_kwargs: Any) -> Any:
        calls.append(True)
        raise ClientError(
            {"Error": {"Code": "LimitExceededException", "Message": "Attempt limit exceeded"}},
            operation,
        )

    setattr(client, operation, limited)
    try:
        yield calls
    finally:
        setattr(client, operation, original)


@contextmanager
def dev_resend_refused(app: LimitedApp) -> Iterator[list[bool]]:
    """moto has no ResendConfirmationCode (the dev layer sends sign-up codes itself), so
    Cognito's LimitExceededException is put where the dev layer would call it, translated
    by the gateway's one error table as a real answer would be."""
    gateway = app.state.gateway
    calls: list[bool] = []

    def limited(email: str) -> Any:
        calls.append(True)
        raise translate(
            "ResendConfirmationCode",
            ClientError(
                {"Error": {"Code": "LimitExceededException", "Message": "Attempt limit exceeded"}},
                "ResendConfirmationCode",
            ),
        )

    gateway.resend_confirmation_code = limited
    try:
        yield calls
    finally:
        del gateway.resend_confirmation_code  # the class's method again


CODE_TRIES = 5


class TestCodeTriesRenewOnlyWithANewCode:
    def test_a_forgot_that_sent_no_code_buys_no_new_guesses(self, cognito, database_url):
        with limited_app(cognito, database_url) as app:
            email = direct_user(cognito)
            assert app.client.post(FORGOT, json={"email": email}).status_code == 202
            code = latest_code(app.outbox, email, "password_reset_code")
            bad = {"email": email, "code": other_code(code), "new_password": NEW_PASSWORD}
            for _ in range(CODE_TRIES):
                assert app.peer(random_ip()).post(RESET, json=bad).status_code == 400
            assert_limited(app.peer(random_ip()).post(RESET, json=bad), max_retry_after=3600)

            with cognito_refuses(app, "forgot_password") as calls:
                answer = app.peer(random_ip()).post(FORGOT, json={"email": email})
            assert calls, "Cognito was not asked: the test would prove nothing"
            assert answer.status_code == 202  # the usual answer (enumeration)
            mark = app.calls.count
            assert_limited(app.peer(random_ip()).post(RESET, json=bad), max_retry_after=3600)
            assert app.calls.since(mark) == []

            # A code that really went out renews the tries.
            assert app.client.post(FORGOT, json={"email": email}).status_code == 202
            new_code = latest_code(app.outbox, email, "password_reset_code")
            reset = app.peer(random_ip()).post(RESET, json={**bad, "code": new_code})
            assert reset.status_code == 204, reset.text

    def test_a_resend_that_sent_no_code_buys_no_new_guesses(self, cognito, database_url):
        with limited_app(cognito, database_url) as app:
            email = new_email()
            assert sign_up(app.client, email).status_code == 202
            code = latest_code(app.outbox, email, "sign_up_code")
            bad = {"email": email, "code": other_code(code)}
            for _ in range(CODE_TRIES):
                assert app.peer(random_ip()).post(CONFIRM, json=bad).status_code == 400
            assert_limited(app.peer(random_ip()).post(CONFIRM, json=bad), max_retry_after=86400)

            with dev_resend_refused(app) as calls:
                answer = app.peer(random_ip()).post(RESEND, json={"email": email})
            assert calls, "Cognito was not asked: the test would prove nothing"
            assert answer.status_code == 202
            assert_limited(app.peer(random_ip()).post(CONFIRM, json=bad), max_retry_after=86400)

            assert app.client.post(RESEND, json={"email": email}).status_code == 202
            new_code = latest_code(app.outbox, email, "sign_up_code")
            confirmed = app.peer(random_ip()).post(CONFIRM, json={"email": email, "code": new_code})
            assert confirmed.status_code == 204, confirmed.text


@pytest.mark.parametrize("path", [FORGOT, RESEND], ids=["forgot", "resend"])
def test_unknown_emails_renew_like_known_ones(path: str, cognito, database_url):
    """Enumeration: for an unknown email, asking for a code renews the tries exactly as a
    code sent to a known one does (Cognito pretends to send; there is nothing to guess)."""
    check = RESET if path == FORGOT else CONFIRM
    extra = {"new_password": NEW_PASSWORD} if path == FORGOT else {}
    with limited_app(cognito, database_url) as app:
        email = new_email()
        bad = {"email": email, "code": "123456", **extra}
        for _ in range(CODE_TRIES):
            assert app.peer(random_ip()).post(check, json=bad).status_code == 400
        assert app.peer(random_ip()).post(check, json=bad).status_code == 429
        assert app.peer(random_ip()).post(path, json={"email": email}).status_code == 202
        answer = app.peer(random_ip()).post(check, json=bad)
        assert answer.status_code == 400, answer.text


# --------------------------------------------------------------------------- instances


def test_instances_on_one_redis_share_the_ceiling_and_the_pairs(redis_url, redis_keys):
    """Two instances (two RateLimits on one Redis, one AUTHSVC_SECRET_KEY): failures on
    either count toward the same (email, address) pairs and the same ceiling."""
    settings = Settings(
        cognito_user_pool_id="us-east-1_lockout",
        cognito_client_id="c",
        secret_key="security-tests-secret-key-0123456789",
        redis_url=redis_url,
        rate_limit_sign_in_failures=f"{PAIR}/minute",
        rate_limit_sign_in_identifier_failures=f"{CEILING}/minute",
    )
    a, b = RateLimits(settings), RateLimits(settings)
    email = new_email()
    attackers = [random_ip() for _ in range(4)]
    redis_keys.track(email, *attackers, *(f"{email}\x1f{ip}" for ip in attackers))

    def fail(limits: RateLimits, ip: str) -> bool:
        """One wrong password; False when refused before the call."""
        try:
            with limits.sign_in_failures(email, ip):
                raise errors.InvalidCredentialsError()
        except errors.RateLimitedError:
            return False
        except errors.InvalidCredentialsError:
            return True

    served = 0
    for i, ip in enumerate(attackers):
        while fail((a, b)[i % 2], ip):
            served += 1
    assert served == CEILING + OVER_CEILING_ALLOWANCE, served
    for ip in attackers:
        assert not fail(a, ip) and not fail(b, ip)
    # The owner's address, on either instance, is not refused.
    owner = random_ip()
    redis_keys.track(f"{email}\x1f{owner}", owner)
    for limits in (a, b):
        with limits.sign_in_failures(email, owner):
            pass
    assert a.storage_errors == b.storage_errors == 0
    # Another secret key means other keys: nothing is shared with, or learned from, them.
    other = RateLimits(settings.model_copy(update={"secret_key": SecretStr("another-key-" * 3)}))
    assert fail(other, attackers[0])


@pytest.mark.parametrize(
    "setting",
    [
        "rate_limit_sign_in_failures_ip",
        "rate_limit_sign_in_identifier_failures",
        "rate_limit_forgot_ceiling",
        "rate_limit_resend_identifier",
        "rate_limit_resend_ceiling",
    ],
)
def test_a_bad_value_for_a_new_limit_is_refused_naming_it(setting: str):
    with pytest.raises(ValidationError) as raised:
        Settings(
            cognito_user_pool_id="us-east-1_lockout",
            cognito_client_id="c",
            secret_key="x" * 16,
            **{setting: "ten per minute"},
        )
    assert setting in str(raised.value)
    assert "is not a rate limit like" in str(raised.value)
