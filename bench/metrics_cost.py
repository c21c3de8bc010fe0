"""What recording metrics costs per request (issue 16.5 under issue 12's budget).

    .venv/bin/python bench/metrics_cost.py [--old PATH_TO_OLD_METRICS_PY]

Times, in µs per request, in this process (no server, no network):

- ``record``: what the middleware does on the hot path (one deque append);
- ``flush``: the flusher's work per request recorded (aggregation and prometheus-client
  increments), in single-process mode and in multiprocess mode (mmap files);
- ``scrape``: one /metrics rendering, in ms;
- with ``--old``, the hand-written registry it replaced (its per-request counters).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import timeit

ROUTES = [
    ("/healthz", "GET", 200),
    ("/v1/auth/session", "GET", 200),
    ("/v1/auth/sign-in", "POST", 401),
]
N = 200_000


def best_of(repeat: int, fn: object, number: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6  # type: ignore[arg-type]


def measure(label: str) -> None:
    from authsvc import metrics

    record = metrics.record_request
    items = [(r, m, s, 0.0004 + i * 1e-7) for i, (r, m, s) in enumerate(ROUTES * 10)]
    k = len(items)

    def hot() -> None:  # as the middleware does: the tuple built, then appended
        for route, method, status, seconds in items:
            record((route, method, status, seconds))

    per_record = best_of(5, hot, N // k) / k
    metrics.flush()

    def fill_and_flush() -> None:
        for _ in range(5000 // k):
            for item in items:
                record(item)
        metrics.flush()

    per_flushed = best_of(5, fill_and_flush, 20) / (5000 // k * k)
    scrape_ms = best_of(5, metrics.render, 20) / 1000
    print(
        f"{label}: record {per_record:.3f} µs/request; flush {per_flushed:.3f} µs/request;"
        f" scrape {scrape_ms:.2f} ms"
    )


def measure_old(path: str) -> None:
    spec = importlib.util.spec_from_file_location("old_metrics", path)
    assert spec and spec.loader
    old = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(old)
    items = [(r, s, 0.0004) for r, _, s in ROUTES * 10]
    k = len(items)
    observe = old.observe_request

    def hot() -> None:
        for route, status, seconds in items:
            observe(route, status, seconds)

    print(f"old registry: record {best_of(5, hot, N // k) / k:.3f} µs/request")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", help="the replaced src/authsvc/metrics.py, for comparison")
    parser.add_argument("--multiprocess-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.multiprocess_child:
        measure("multiprocess (PROMETHEUS_MULTIPROC_DIR)")
        return
    if args.old:
        measure_old(args.old)
    measure("single process")
    with tempfile.TemporaryDirectory() as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        subprocess.run([sys.executable, __file__, "--multiprocess-child"], env=env, check=True)


if __name__ == "__main__":
    importlib.invalidate_caches()
    main()
