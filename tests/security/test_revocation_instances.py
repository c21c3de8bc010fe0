"""Revocation across instances (issue: Security, 3; DESIGN §5).

Two `authsvc serve` processes, A and B, share one Postgres database. A user signs in; the
session is revoked through A (sign-out, password change, password reset, and the admin's
set-password, sign-out, disable and delete). Then:

- the old access token is refused (401 `invalid_token`) by A at once and by B within 1 s of
  the revoking request's answer, although B had verified it before (it sits in B's
  verified-token cache);
- a token issued after the revocation is accepted by both — arranged to fall in the same
  second as the revocation and the old token, where whole-second `iat` cannot tell them
  apart. A token B hands out right after the revocation (before B's poll has seen it) is
  accepted by B at once and by A within the poll interval; A refusing it for a moment is
  the documented fail-safe window, measured here and bounded by 1 s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import create_engine, text

from tests.helpers import PASSWORD
from tests.security.support import ServeInstance, direct_user, make_admin, username_of

SESSION = "/v1/auth/session"
WITHIN_S = 1.0
NEW_PASSWORD = "N3w-Passw0rd!x"
ATTEMPTS = 4  # tries at fitting one scenario into a single wall-clock second


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iat(token: str) -> int:
    return int(jwt.decode(token, options={"verify_signature": False})["iat"])


def sub(token: str) -> str:
    return str(jwt.decode(token, options={"verify_signature": False})["sub"])


def sign_in(client: httpx.Client, email: str, password: str = PASSWORD) -> str:
    response = client.post("/v1/auth/sign-in", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "tokens", body
    return str(body["access_token"])


def verdict(client: httpx.Client, token: str) -> str:
    """'ok', 'invalid_token', or whatever else the instance answered."""
    response = client.get(SESSION, headers=bearer(token))
    if response.status_code == 200:
        return "ok"
    if response.status_code == 401:
        return str(response.json().get("code"))
    return f"{response.status_code}: {response.text}"


def time_until(
    clients: dict[str, httpx.Client], token: str, wanted: str, since: float, limit: float = 5.0
) -> dict[str, float]:
    """Seconds from ``since`` until each instance answers ``wanted`` for ``token``."""
    reached: dict[str, float] = {}
    while len(reached) < len(clients):
        for name, client in clients.items():
            if name not in reached and verdict(client, token) == wanted:
                reached[name] = time.perf_counter() - since
        if time.perf_counter() - since > limit:
            answers = {name: verdict(c, token) for name, c in clients.items()}
            raise AssertionError(f"not {wanted} everywhere after {limit}s: {answers}")
        time.sleep(0.01)
    return reached


def wait_for_a_fresh_second() -> None:
    """Sleep to just after a second boundary, so what follows fits in one second."""
    time.sleep(1.0 - time.time() % 1.0 + 0.005)


# --------------------------------------------------------------------------- fixtures


@dataclass
class Cluster:
    a: httpx.Client
    b: httpx.Client
    cognito: Any
    database_url: str
    admin_token: str
    engine: Any = field(default=None)

    @property
    def both(self) -> dict[str, httpx.Client]:
        return {"A": self.a, "B": self.b}

    @contextmanager
    def watchers(self) -> Iterator[dict[str, httpx.Client]]:
        """Clients of their own, for polling from another thread."""
        with (
            httpx.Client(base_url=str(self.a.base_url), timeout=15) as a,
            httpx.Client(base_url=str(self.b.base_url), timeout=15) as b,
        ):
            yield {"A": a, "B": b}

    def revoked_at_us(self, user_sub: str) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT revoked_at_us FROM token_revocation WHERE sub = :sub"),
                {"sub": user_sub},
            ).scalar()


@pytest.fixture(scope="module")
def cluster(
    cognito: Any, serve_pair: tuple[ServeInstance, ServeInstance], serve_database: str
) -> Iterator[Cluster]:
    a, b = serve_pair
    engine = create_engine(serve_database)
    with a.client() as on_a, b.client() as on_b:
        admin_token = sign_in(on_a, make_admin(cognito))
        yield Cluster(on_a, on_b, cognito, serve_database, admin_token, engine)
    engine.dispose()


@dataclass
class Victim:
    email: str
    username: str
    password: str
    token: str  # issued before the revocation


# An action revokes through A and returns the password to sign in with afterwards, or None
# when nobody can sign in as the user any more.
Action = Callable[[Cluster, Victim], str | None]


def _ok(response: httpx.Response, status: int = 204) -> None:
    assert response.status_code == status, response.text


def sign_out(c: Cluster, v: Victim) -> str | None:
    _ok(c.a.post("/v1/auth/sign-out", headers=bearer(v.token)))
    return v.password


def change_password(c: Cluster, v: Victim) -> str | None:
    body = {"current_password": v.password, "new_password": NEW_PASSWORD}
    _ok(c.a.post("/v1/me/password", json=body, headers=bearer(v.token)))
    return NEW_PASSWORD


def reset_password(c: Cluster, v: Victim) -> str | None:
    # Outside dev mode the emulator checks no reset code it did not prefix (REFERENCE.md):
    # any six digits reset the password, which is all this test needs.
    _ok(c.a.post("/v1/auth/password/forgot", json={"email": v.email}), 202)
    body = {"email": v.email, "code": "123456", "new_password": NEW_PASSWORD}
    _ok(c.a.post("/v1/auth/password/reset", json=body))
    return NEW_PASSWORD


def admin_set_password(c: Cluster, v: Victim) -> str | None:
    body = {"password": NEW_PASSWORD, "permanent": True}
    path = f"/v1/admin/users/{v.username}/password"
    _ok(c.a.post(path, json=body, headers=bearer(c.admin_token)))
    return NEW_PASSWORD


def admin_sign_out(c: Cluster, v: Victim) -> str | None:
    path = f"/v1/admin/users/{v.username}/sign-out"
    _ok(c.a.post(path, headers=bearer(c.admin_token)))
    return v.password


def admin_disable(c: Cluster, v: Victim) -> str | None:
    path = f"/v1/admin/users/{v.username}"
    _ok(c.a.post(f"{path}/disable", headers=bearer(c.admin_token)))
    _ok(c.a.post(f"{path}/enable", headers=bearer(c.admin_token)))  # then sign in again
    return v.password


def admin_delete(c: Cluster, v: Victim) -> str | None:
    _ok(c.a.delete(f"/v1/admin/users/{v.username}", headers=bearer(c.admin_token)))
    return None


ACTIONS: list[Action] = [
    sign_out,
    change_password,
    reset_password,
    admin_set_password,
    admin_sign_out,
    admin_disable,
    admin_delete,
]


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("action", ACTIONS, ids=lambda f: f.__name__)
def test_revocation_reaches_both_instances_within_a_second(action: Action, cluster: Cluster):
    for attempt in range(1, ATTEMPTS + 1):
        email = direct_user(cluster.cognito)
        username = username_of(cluster.cognito, email)

        wait_for_a_fresh_second()
        old = sign_in(cluster.a, email)
        # Both instances accept it, and now hold it in their verified-token caches.
        assert {n: verdict(c, old) for n, c in cluster.both.items()} == {"A": "ok", "B": "ok"}

        password = action(cluster, Victim(email, username, PASSWORD, old))
        revoked = time.perf_counter()  # the revoking request has answered
        # The instance that revoked refuses the token at once.
        assert verdict(cluster.a, old) == "invalid_token"
        # Watch both instances from the side while new tokens are issued in the same second.
        with ThreadPoolExecutor(1) as pool, cluster.watchers() as watchers:
            refusal = pool.submit(time_until, watchers, old, "invalid_token", revoked)
            after_a = sign_in(cluster.a, email, password) if password else None
            after_b = sign_in(cluster.b, email, password) if password else None
            issued_after = time.perf_counter()
            refused = refusal.result(timeout=30)
        # ... and every instance does within 1 s of the revocation.
        assert max(refused.values()) < WITHIN_S, refused
        assert verdict(cluster.a, old) == verdict(cluster.b, old) == "invalid_token"

        revoked_at = cluster.revoked_at_us(sub(old))
        assert revoked_at is not None, "no revocation was recorded"
        same_second = iat(old) == revoked_at // 1_000_000

        if after_a is not None and after_b is not None:
            same_second = same_second and iat(after_a) == revoked_at // 1_000_000
            # Issued by the instance that revoked: good on both at once.
            assert verdict(cluster.a, after_a) == "ok"
            assert verdict(cluster.b, after_a) == "ok"
            # Issued by the other instance, maybe before it heard of the revocation: good on
            # B at once, on A within the poll interval.
            assert verdict(cluster.b, after_b) == "ok"
            accepted = time_until(cluster.both, after_b, "ok", issued_after)
            assert max(accepted.values()) < WITHIN_S, accepted
            # ... and it stays good once every instance has synchronised.
            time.sleep(0.6)
            for token in (after_a, after_b):
                verdicts = {n: verdict(c, token) for n, c in cluster.both.items()}
                assert verdicts == {"A": "ok", "B": "ok"}, verdicts
            assert verdict(cluster.a, old) == verdict(cluster.b, old) == "invalid_token"

        if same_second:
            return
    pytest.fail(
        f"the scenario never fitted in one second in {ATTEMPTS} attempts: the same-second case "
        "was not exercised (the machine is too slow for this test)"
    )


def test_other_users_tokens_survive_a_revocation(cluster: Cluster):
    bystander = sign_in(cluster.b, direct_user(cluster.cognito))
    victim = sign_in(cluster.a, direct_user(cluster.cognito))
    _ok(cluster.a.post("/v1/auth/sign-out", headers=bearer(victim)))
    time.sleep(0.6)  # both instances have polled
    assert verdict(cluster.a, victim) == verdict(cluster.b, victim) == "invalid_token"
    assert verdict(cluster.a, bystander) == verdict(cluster.b, bystander) == "ok"
