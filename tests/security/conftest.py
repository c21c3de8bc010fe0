"""Fixtures for the security tests: a Redis database for rate-limit keys, and two
`authsvc serve` instances sharing one Postgres database and one Redis."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import redis

from authsvc import migrate
from authsvc.security.ratelimit import hashed_key
from tests.conftest import IN_CI, create_database, drop_database
from tests.security.support import ServeInstance, serve_env, start_serve, stop_serve

# Database 15: nothing else in the project uses it. Tests never FLUSHDB it (two xdist workers
# may use it at once): each uses fresh identifiers and deletes exactly the keys it made.
REDIS_URL = "redis://127.0.0.1:6379/15"
# The two `authsvc serve` instances trip their shared sign-in failure limit after this many.
SERVE_SIGN_IN_FAILURES = 4


# The AUTHSVC_SECRET_KEY of the apps these tests build (make_settings) and of the two
# `authsvc serve` instances (serve_env): rate-limit keys are HMACs under it.
SECRET_KEYS = ("test-suite-secret-key-0123456789", "security-tests-secret-key-0123456789")


class RedisKeys:
    """The rate-limit keys made for given identifiers (keys hold HMACs, never the values)."""

    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.identifiers: list[str] = []

    def keys(self, identifier: str) -> list[bytes]:
        found: list[bytes] = []
        for secret in SECRET_KEYS:
            pattern = f"authsvc:LIMITER/*/{hashed_key(secret.encode(), identifier)}/*"
            found += self.client.scan_iter(match=pattern, count=1000)
        return found

    def keys_for(self, identifier: str) -> list[bytes]:
        if identifier not in self.identifiers:
            self.identifiers.append(identifier)
        return self.keys(identifier)

    def track(self, *identifiers: str) -> None:
        self.identifiers.extend(i for i in identifiers if i not in self.identifiers)

    def cleanup(self) -> None:
        for identifier in self.identifiers:
            keys = self.keys(identifier)
            if keys:
                self.client.delete(*keys)
        self.client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """Redis database 15 (fails under CI when Redis is down, skips elsewhere)."""
    try:
        redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError:
        message = f"Redis is not reachable at {REDIS_URL}; start one to run these tests"
        if IN_CI:
            pytest.fail(message + " — required under CI=true")
        pytest.skip(message)
    return REDIS_URL


@pytest.fixture
def redis_keys(redis_url: str) -> Iterator[RedisKeys]:
    keys = RedisKeys(redis_url)
    yield keys
    keys.cleanup()


@pytest.fixture(scope="session")
def serve_database(postgres_server: str) -> Iterator[str]:
    """A Postgres database of its own for the `authsvc serve` instances, migrated to head."""
    url = create_database(postgres_server, prefix="authsvc_sec")
    migrate.upgrade(url)
    yield url
    drop_database(postgres_server, url)


@pytest.fixture(scope="session")
def serve_pair(
    cognito: Any,
    serve_database: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[ServeInstance, ServeInstance]]:
    """Instances A and B of `authsvc serve`: one Postgres database, one Redis."""
    env = serve_env(
        cognito,
        serve_database,
        redis_url=redis_url,
        rate_limit_sign_in_failures=f"{SERVE_SIGN_IN_FAILURES}/minute",
        # Every request comes from 127.0.0.1 and the Redis buckets outlive a run: keep the
        # per-IP rules out of the way of the tests that do not exercise them.
        rate_limit_sign_in_ip="100000/minute",
        rate_limit_email_ip="100000/minute",
        rate_limit_verify_ip="100000/minute",
        rate_limit_refresh_ip="100000/minute",
    )
    a, b = start_serve(["A", "B"], env, tmp_path_factory.mktemp("serve"))
    try:
        yield a, b
    finally:
        stop_serve([a, b])
