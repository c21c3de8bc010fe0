"""The outbound Cognito budget (issue: Reliability, 2).

An `authsvc serve` allowed two UserAuthentication calls per second
(AUTHSVC_COGNITO_BUDGET_USER_AUTHENTICATION=2) answers a burst of sign-ins with some
503 `upstream_unavailable` and `Retry-After: 1`; the refused ones never reach Cognito (the
proxy in front of moto counts what arrives). With AUTHSVC_REDIS_URL two instances share
one budget: what A spends, B cannot.

The budget is a fixed window that opens with its first call and lasts one second; a burst
that took longer than that is run again rather than asserted on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis

from tests.conftest import IN_CI
from tests.helpers import PASSWORD
from tests.reliability.conftest import CognitoProxy, assert_unavailable, reliability_env
from tests.security.support import (
    METRICS_HEADERS,
    ServeInstance,
    direct_user,
    start_serve,
    stop_serve,
)

pytestmark = pytest.mark.slow

BUDGET = 2  # UserAuthentication calls per second
# Database 14: nothing else uses it; only one test here does, and it flushes it first.
REDIS_URL = "redis://127.0.0.1:6379/14"
BURST = 10
TRIES = 5


def _env(cognito: Any, database: str, proxy: CognitoProxy, **extra: str) -> dict[str, str]:
    return reliability_env(
        cognito, database, proxy, cognito_budget_user_authentication=str(BUDGET), **extra
    )


@pytest.fixture(scope="module")
def solo(
    cognito: Any,
    cognito_proxy: CognitoProxy,
    module_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServeInstance]:
    env = _env(cognito, module_database, cognito_proxy)
    (instance,) = start_serve(["solo"], env, tmp_path_factory.mktemp("budget"))
    yield instance
    stop_serve([instance])


@pytest.fixture(scope="module")
def shared_redis() -> str:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.flushdb()
    except redis.RedisError:
        message = f"Redis is not reachable at {REDIS_URL}; start one to run this test"
        if IN_CI:
            pytest.fail(message + " — required under CI=true")
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture(scope="module")
def pair(
    cognito: Any,
    cognito_proxy: CognitoProxy,
    module_database: str,
    shared_redis: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServeInstance, ServeInstance]]:
    env = _env(cognito, module_database, cognito_proxy, redis_url=shared_redis)
    a, b = start_serve(["A", "B"], env, tmp_path_factory.mktemp("budget-pair"))
    yield a, b
    stop_serve([a, b])


def _sign_in(target: str | httpx.Client, email: str) -> httpx.Response:
    body = {"email": email, "password": PASSWORD}
    if isinstance(target, httpx.Client):
        return target.post("/v1/auth/sign-in", json=body)
    with httpx.Client(base_url=target, timeout=15.0) as client:
        return client.post("/v1/auth/sign-in", json=body)


def _within_one_window(run: Callable[[], Any]) -> Any:
    """Run ``run`` on a fresh budget window until it completes within that window."""
    for _ in range(TRIES):
        time.sleep(1.1)  # whatever window was open has closed
        started = time.monotonic()
        result = run()
        if time.monotonic() - started < 0.9:
            return result
    pytest.fail(f"could not fit the scenario into one second in {TRIES} tries (machine busy)")


def _refused_metric(base_url: str) -> float:
    text = httpx.get(f"{base_url}/metrics", headers=METRICS_HEADERS, timeout=5).text
    line = next(li for li in text.splitlines() if li.startswith("authsvc_cognito_budget_refused"))
    return float(line.split()[-1])


def test_burst_beyond_the_budget_is_refused_before_cognito(
    cognito: Any, cognito_proxy: CognitoProxy, solo: ServeInstance
) -> None:
    email = direct_user(cognito, tag="relbudget")
    refused_before = _refused_metric(solo.base_url)
    time.sleep(1.1)  # whatever window was open has closed
    mark = cognito_proxy.mark()
    started = time.monotonic()
    with ThreadPoolExecutor(BURST) as pool:
        answers = list(pool.map(lambda _: _sign_in(solo.base_url, email), range(BURST)))
    took = time.monotonic() - started
    reached = cognito_proxy.since(mark, "InitiateAuth")

    ok = [a for a in answers if a.status_code == 200]
    refused = [a for a in answers if a.status_code != 200]
    assert refused, [a.status_code for a in answers]
    for answer in refused:
        assert_unavailable(answer)
        assert answer.headers["retry-after"] == "1"
    # Only the admitted sign-ins were sent: the refused ones never reached Cognito.
    assert len(reached) == len(ok)
    # One window of BUDGET calls per second the burst lasted (exactly one when it was quick).
    assert len(ok) <= BUDGET * (int(took) + 1), (len(ok), took)
    if took < 1.0:
        assert len(ok) == BUDGET
    assert _refused_metric(solo.base_url) - refused_before == len(refused)


def test_instances_share_the_budget_through_redis(
    cognito: Any, cognito_proxy: CognitoProxy, pair: tuple[ServeInstance, ServeInstance]
) -> None:
    a, b = pair
    email = direct_user(cognito, tag="relbudget")

    with a.client() as on_a, b.client() as on_b:
        for client in (on_a, on_b):  # connections open before the clock starts
            assert client.get("/healthz").status_code == 200

        def a_spends_b_is_refused() -> tuple[list[httpx.Response], list[str]]:
            mark = cognito_proxy.mark()
            answers = [_sign_in(c, email) for c in (on_a, on_a, on_b)]
            return answers, cognito_proxy.operations(mark)

        answers, reached = _within_one_window(a_spends_b_is_refused)
    assert [r.status_code for r in answers] == [200, 200, 503], [r.text for r in answers]
    assert_unavailable(answers[2])
    assert answers[2].headers["retry-after"] == "1"
    assert reached.count("InitiateAuth") == BUDGET, reached  # B's never left B

    # The next window is B's as much as A's.
    time.sleep(1.1)
    assert _sign_in(b.base_url, email).status_code == 200
