"""Where a sign-in's time goes, beyond the Cognito call itself (issue 12, row 4).

    .venv/bin/python bench/profile_sign_in.py            # 300 sign-ins each way
    .venv/bin/python bench/profile_sign_in.py -n 1000 --top 25

Starts moto's server and a bench database (as bench/run.py does), builds the app the way
`authsvc serve` does (`create_app_from_env`, access log on, audit on), and sends sign-ins
straight into the ASGI app (no HTTP client, no socket: only authsvc and FastAPI run in this
process). Two load-independent measures per sign-in:

- **Python function calls**, split into those inside botocore's ``_make_api_call`` (the
  Cognito call any direct boto3 caller makes too) and the rest (what authsvc and FastAPI
  add). Counted with a profile hook on the event loop's thread and the thread pool's
  threads, so the sync route's thread hop is included. Deterministic.
- **CPU time** of this process per sign-in (all threads: the audit writer's insert counts),
  and the same for a direct boto3 ``initiate_auth`` against the same moto: the difference
  is the CPU authsvc adds. moto runs in its own process and is in neither number.

Prints the top functions (by calls) outside the Cognito call. ``--other-routes`` also counts
Python calls per request for /healthz, a cached-token /v1/auth/session and an invitation
lookup (1,000 invitations, as bench/run.py fills them). Never run by the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.run import (  # noqa: E402
    PASSWORD,
    Run,
    bench_database,
    compile_sources,
    fill_invitations,
    serve_env,
    start_moto,
)


class CallCounter:
    """Counts Python calls on the threads that serve a request (the event loop's and the
    thread pool's), split by whether botocore's ``_make_api_call`` is on the stack."""

    def __init__(self) -> None:
        from botocore.client import BaseClient

        self.api_call = BaseClient._make_api_call.__code__
        self.active = False
        self.inside: dict[int, int] = collections.defaultdict(int)
        self.serving: dict[int, bool] = {}
        self.cognito = 0
        self.added = 0
        self.by_function: collections.Counter[str] = collections.Counter()
        self.main = threading.get_ident()

    def _serves(self, ident: int) -> bool:
        known = self.serving.get(ident)
        if known is None:
            name = threading.current_thread().name
            known = ident == self.main or name.startswith(("AnyIO worker", "asyncio_"))
            self.serving[ident] = known
        return known

    def __call__(self, frame: Any, event: str, _arg: Any) -> None:
        if event not in ("call", "return"):
            return
        code = frame.f_code
        ident = threading.get_ident()
        if code is self.api_call:
            self.inside[ident] += 1 if event == "call" else -1
            if event == "return":
                return
        if event != "call" or not self.active or not self._serves(ident):
            return
        if code.co_filename == __file__:
            return  # this script's own ASGI driver
        if self.inside[ident] > 0:
            self.cognito += 1
        else:
            self.added += 1
            where = code.co_filename.split("site-packages/")[-1].split("/src/")[-1]
            self.by_function[f"{where}:{code.co_firstlineno}({code.co_name})"] += 1

    async def install(self) -> None:
        """On this thread, on the pool thread the next request will use (anyio hands out
        the most recently idle worker: one thread serves sequential requests), and on any
        thread started from now on."""
        import anyio.to_thread

        threading.setprofile(self)
        await anyio.to_thread.run_sync(sys.setprofile, self)
        sys.setprofile(self)

    async def remove(self) -> None:
        import anyio.to_thread

        sys.setprofile(None)
        await anyio.to_thread.run_sync(sys.setprofile, None)
        threading.setprofile(None)  # type: ignore[arg-type]


async def asgi_post(
    app: Any,
    path: str,
    payload: dict[str, Any] | None,
    *,
    method: str = "POST",
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> tuple[int, bytes]:
    body = json.dumps(payload).encode() if payload is not None else b""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"bench"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"user-agent", b"profile_sign_in"),
            *headers,
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status = 0
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def calls_per_request(app: Any, n: int, send: Any) -> float:
    """Python calls per request on the serving threads (for the other hot paths)."""
    for _ in range(20):
        await send()
    counter = CallCounter()
    await counter.install()
    try:
        counter.active = True
        for _ in range(n):
            await send()
        counter.active = False
    finally:
        await counter.remove()
    return (counter.added + counter.cognito) / n


async def other_routes(app: Any, token: str, invitation: str, n: int) -> dict[str, float]:
    bearer = ((b"authorization", f"Bearer {token}".encode()),)

    async def healthz() -> None:
        status, _ = await asgi_post(app, "/healthz", None, method="GET")
        assert status == 200

    async def session() -> None:
        status, _ = await asgi_post(app, "/v1/auth/session", None, method="GET", headers=bearer)
        assert status == 200

    async def lookup() -> None:
        status, answer = await asgi_post(app, "/v1/invitations/lookup", {"token": invitation})
        assert status == 200, answer

    async with app.router.lifespan_context(app):
        return {
            "GET /healthz": await calls_per_request(app, n, healthz),
            "GET /v1/auth/session": await calls_per_request(app, n, session),
            "POST /v1/invitations/lookup": await calls_per_request(app, n, lookup),
        }


async def profile(app: Any, cognito: Any, email: str, n: int, top: int) -> dict[str, Any]:
    body = {"email": email, "password": PASSWORD}
    direct = cognito.boto()

    async def sign_in() -> None:
        status, answer = await asgi_post(app, "/v1/auth/sign-in", body)
        assert status == 200, answer

    def boto_sign_in() -> None:
        assert "AuthenticationResult" in cognito.initiate_auth(email, direct)

    async with app.router.lifespan_context(app):
        for _ in range(30):  # warm-up: pools, caches, lazy imports
            await sign_in()
            boto_sign_in()
        # CPU per call, alternating blocks of 10 so that drift hits both alike.
        cpu = {"authsvc": 0.0, "boto3": 0.0}
        for _ in range(n // 10):
            t0 = time.process_time()
            for _ in range(10):
                await sign_in()
            t1 = time.process_time()
            for _ in range(10):
                boto_sign_in()
            t2 = time.process_time()
            cpu["authsvc"] += t1 - t0
            cpu["boto3"] += t2 - t1
        # Calls per sign-in (the hook slows everything down: CPU was measured without it).
        counter = CallCounter()
        await counter.install()
        try:
            counter.active = True
            for _ in range(n):
                await sign_in()
            counter.active = False
        finally:
            await counter.remove()
        await asyncio.sleep(0.5)  # let the audit writer drain before the lifespan ends
    runs = (n // 10) * 10
    return {
        "sign_ins": n,
        "calls_per_sign_in": {
            "inside the Cognito call (botocore)": counter.cognito / n,
            "added by authsvc and FastAPI": counter.added / n,
        },
        "cpu_ms_per_sign_in": {
            "through authsvc (this process)": cpu["authsvc"] / runs * 1000,
            "direct boto3 initiate_auth": cpu["boto3"] / runs * 1000,
            "added by authsvc": (cpu["authsvc"] - cpu["boto3"]) / runs * 1000,
        },
        "top_added_functions": [
            (name, round(count / n, 2)) for name, count in counter.by_function.most_common(top)
        ],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=300, help="sign-ins per measure")
    parser.add_argument("--top", type=int, default=30, help="functions listed")
    parser.add_argument("--json", type=Path, default=None, help="also write the result here")
    parser.add_argument(
        "--other-routes",
        action="store_true",
        help="also count calls per request for /healthz, /v1/auth/session, invitation lookup",
    )
    args = parser.parse_args()
    compile_sources()
    run = Run(True, Path(tempfile.mkdtemp(prefix="authsvc-profile-")))
    try:
        cognito = start_moto(run)
        with bench_database() as database_url:
            email = "profile@example.com"
            token = cognito.user(email)
            os.environ.update(serve_env(cognito, database_url))
            from authsvc.main import create_app_from_env

            # The access log stays on (its cost is part of every request), into a file.
            log_file = (run.tmp / "authsvc.log").open("w")
            stderr, sys.stderr = sys.stderr, log_file
            try:
                app = create_app_from_env()
            finally:
                sys.stderr = stderr
            result = asyncio.run(profile(app, cognito, email, args.n, args.top))
            if args.other_routes:
                fill_invitations(database_url, 1, 1000)
                invitation = "bench-invitation-token-10"  # pending (bench/run.py's fill)
                result["calls_per_request_other_routes"] = asyncio.run(
                    other_routes(app, token, invitation, args.n)
                )
            log_file.close()
    finally:
        run.stop_all()
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
