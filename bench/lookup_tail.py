"""Where the invitation lookup's p99 (row 7a) comes from: `authsvc serve` as the bench runs
it, the same with its background work slowed (outbox every 30 s, reconciler hourly), and
bare FastAPI through the same client, in two rounds over 1,000,000 invitations.

    .venv/bin/python bench/lookup_tail.py
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import run as b  # noqa: E402 - after the path

INVITATIONS = 1_000_000
SAMPLES = 2000
VARIANTS: dict[str, dict[str, str]] = {
    "default": {},
    "quiet background": {"outbox_poll_seconds": "30", "reconcile_interval_seconds": "3600"},
}


def summary(name: str, samples: list[float]) -> str:
    return (
        f"{name:17s} p50 {statistics.median(samples):.2f} p99 {b.pct(samples, 0.99):.2f}"
        f" p99.9 {b.pct(samples, 0.999):.2f} max {max(samples):.2f} ms"
    )


def main() -> None:
    run = b.Run(False, Path(tempfile.mkdtemp(prefix="authsvc-lookup-tail-")))
    try:
        b.compile_sources()
        cognito = b.start_moto(run)
        with b.bench_database() as url:
            started = time.perf_counter()
            b.fill_invitations(url, 1, INVITATIONS)
            print(f"filled {INVITATIONS:,} in {time.perf_counter() - started:.0f} s", flush=True)
            procs = {
                name: b.start_serve(run, name.replace(" ", "-"), b.serve_env(cognito, url, **env))
                for name, env in VARIANTS.items()
            }
            port = b.free_port()
            argv = b.uvicorn_argv(Path(sys.executable), "bench.peers.bare:app", port)
            bare = run.start("bare", argv, dict(os.environ), port)
            b.ready_all(list(procs.values()))
            b.wait_http(f"{bare.base}/ping")
            for round_ in range(2):
                for name, proc in procs.items():
                    samples = b.lookup_samples(proc.base, INVITATIONS, SAMPLES)
                    print(f"round {round_} {summary(name, samples)}", flush=True)
                with httpx.Client(base_url=bare.base) as http:
                    samples = b.sample_ms(lambda: http.get("/ping"), SAMPLES)
                print(f"round {round_} {summary('bare /ping', samples)}", flush=True)
    finally:
        run.stop_all()


if __name__ == "__main__":
    main()
