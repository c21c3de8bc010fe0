"""SIGTERM while requests are in flight (issue: Reliability, 4).

Every Cognito call takes 1.5 s (latency on the proxy). 50 clients, each on a connection of
its own, sign in or read their profile; once the requests are in flight the process gets
SIGTERM. Every one of the 50 gets its complete 200 answer, a new connection is refused while
they finish, and the process exits 0 within AUTHSVC_SHUTDOWN_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.helpers import PASSWORD
from tests.reliability.conftest import CognitoProxy, Fault, bearer, reliability_env, sign_in
from tests.security.support import direct_user, start_serve, stop_serve

pytestmark = pytest.mark.slow

CLIENTS = 50
LATENCY_S = 1.5
SHUTDOWN_TIMEOUT_S = 10
WORKER_THREADS = 40  # anyio's default: FastAPI runs the sync endpoints on these


def test_sigterm_lets_requests_in_flight_finish(
    cognito: Any,
    cognito_proxy: CognitoProxy,
    module_database: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    env = reliability_env(
        cognito,
        module_database,
        cognito_proxy,
        cognito_read_timeout="5",  # the latency is slowness, not a fault
        shutdown_timeout_seconds=str(SHUTDOWN_TIMEOUT_S),
    )
    (instance,) = start_serve(["shutdown"], env, tmp_path_factory.mktemp("shutdown"))
    clients: list[httpx.Client] = []
    try:
        email = direct_user(cognito, tag="relshutdown")
        with httpx.Client(base_url=instance.base_url, timeout=30.0) as client:
            token = sign_in(client, email, PASSWORD)["access_token"]

        # One connection per client, open (and accepted by the server) before the clock
        # starts: what is measured is the requests, not a race with the accept queue.
        clients.extend(
            httpx.Client(base_url=instance.base_url, timeout=30.0) for _ in range(CLIENTS)
        )
        for own in clients:
            assert own.get("/healthz").status_code == 200

        def request(i: int) -> httpx.Response:
            if i % 2:
                return clients[i].get("/v1/me", headers=bearer(token))
            body = {"email": email, "password": PASSWORD}
            return clients[i].post("/v1/auth/sign-in", json=body)

        cognito_proxy.inject(Fault("latency", latency=LATENCY_S))
        mark = cognito_proxy.mark()
        with ThreadPoolExecutor(CLIENTS) as pool:
            futures = [pool.submit(request, i) for i in range(CLIENTS)]
            # In flight: the app's worker threads (40) are all busy with a Cognito call held
            # at the proxy; the other requests wait for one of them.
            deadline = time.monotonic() + 10
            while len(cognito_proxy.since(mark)) < min(CLIENTS, WORKER_THREADS):
                assert time.monotonic() < deadline, "requests did not reach Cognito"
                time.sleep(0.02)
            time.sleep(0.2)
            instance.process.send_signal(signal.SIGTERM)
            terminated = time.monotonic()

            # The listening socket is closed while the requests finish.
            refused = False
            while not refused and time.monotonic() - terminated < 2.0:
                try:
                    httpx.get(f"{instance.base_url}/healthz", timeout=2)
                    time.sleep(0.05)
                except httpx.ConnectError:
                    refused = True
                except httpx.TransportError:
                    time.sleep(0.05)  # accepted just before, then closed
            pending = sum(not f.done() for f in futures)
            answers = [f.result() for f in futures]

        assert refused, "new connections were still accepted 2 s after SIGTERM"
        assert pending > 0, "the requests finished before the listener closed: inconclusive"
        for i, answer in enumerate(answers):
            assert answer.status_code == 200, (i, answer.status_code, answer.text)
            body = answer.json()  # complete: the whole JSON document arrived
            assert body["email" if i % 2 else "access_token"], body

        code = instance.process.wait(timeout=SHUTDOWN_TIMEOUT_S + 5)
        exited_after = time.monotonic() - terminated
        assert code == 0, f"exit status {code}: {instance.output()}"
        assert exited_after < SHUTDOWN_TIMEOUT_S, exited_after
    except subprocess.TimeoutExpired:
        pytest.fail(f"still running {SHUTDOWN_TIMEOUT_S + 5}s after SIGTERM")
    finally:
        cognito_proxy.clear()
        for own in clients:
            own.close()
        stop_serve([instance])
