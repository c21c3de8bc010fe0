"""Prometheus metrics from ``prometheus-client``, recorded off the hot path.

On the hot path a request (or a Cognito call) appends one tuple to a ``deque`` (atomic under
the GIL: no lock, no label lookup, no histogram bucket search). A flusher thread drains the
queues every ``FLUSH_SECONDS``, and every scrape drains them first, into prometheus-client's
objects, aggregated per label set: one increment per bucket and label set per flush, not one
per request.

With ``PROMETHEUS_MULTIPROC_DIR`` set (``authsvc serve`` with several workers sets it), the
values live in that directory's files, one per worker, and ``/metrics`` sums every worker's
with ``MultiProcessCollector``; the gauges below say how (``livesum``: the live workers'
sum). Without it, the process's own registry is rendered, with the standard process metrics.
"""

from __future__ import annotations

import bisect
import logging
import os
import re
import shutil
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

log = logging.getLogger("authsvc.metrics")
disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: they double the output and say little

FLUSH_SECONDS = 1.0
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
REQUEST_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
COGNITO_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Any other method a client sends is counted as OTHER: labels never carry arbitrary input.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# -- the hot path: appends only ---------------------------------------------------------

_requests: deque[tuple[str, str, int, float]] = deque()
_cognito: deque[tuple[str, str, float]] = deque()
_counts: deque[tuple[str, tuple[str, ...]]] = deque()

#: ``record_request((route_template, method, status, seconds))``: one append, no lock.
record_request = _requests.append


def observe_cognito(operation: str, outcome: str, seconds: float) -> None:
    _cognito.append((operation, outcome, seconds))


def count(name: str, *labels: str) -> None:
    """One event for the counter ``name`` (see ``_COUNTERS``), with its label values."""
    _counts.append((name, labels))


# -- prometheus-client objects (built on first flush, in the process that records) -------

# name -> (help, label names) for the event counters that ``count`` feeds.
_COUNTERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "authsvc_rate_limit_rejections": ("Requests refused by a rate limit (429).", ("rule",)),
    "authsvc_outbox_delivery_failures": (
        "Failed email deliveries (final: the outbox gave up on the message).",
        ("kind", "final"),
    ),
    "authsvc_emails_sent": ("Emails delivered.", ("kind",)),
    "authsvc_jwks_fetches": ("Fetches of the pool's signing keys (JWKS).", ("outcome",)),
    "authsvc_revocations": (
        "Revocations (sign-outs, password changes, admin actions): held means written later,"
        " the database being down.",
        ("stored",),
    ),
}

# Per-process state read off the components at each flush: name -> (help, multiprocess mode).
STATE_GAUGES: dict[str, tuple[str, Literal["livesum", "livemin"]]] = {
    "authsvc_audit_events_written": ("Audit events written.", "livesum"),
    "authsvc_audit_events_dropped": ("Audit events dropped (buffer full).", "livesum"),
    "authsvc_audit_events_pending": ("Audit events waiting to be written.", "livesum"),
    "authsvc_audit_write_failures": ("Failed audit writes.", "livesum"),
    "authsvc_rate_limit_storage_errors": (
        "Rate-limit storage failures (limits failed open).",
        "livesum",
    ),
    "authsvc_cognito_budget_refused": ("Cognito calls not sent: budget spent.", "livesum"),
    "authsvc_revocation_sync_healthy": (
        "1 when every worker read the revocation ledger on its last poll.",
        "livemin",
    ),
    "authsvc_revocations_unsaved": (
        "Revocations held in memory while the database is down.",
        "livesum",
    ),
}

# Multiprocess mode only (the single-process registry has prometheus-client's own
# ProcessCollector): each worker's process metrics, with a pid label.
_PROCESS_GAUGES = (
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_cpu_seconds_total",
    "process_open_fds",
    "process_start_time_seconds",
)


class _Objects:
    def __init__(self, multiprocess: bool) -> None:
        # Multiprocess: the values live in files, read at scrape by MultiProcessCollector;
        # nothing is registered (the process registry keeps its own process collector).
        registry = None if multiprocess else REGISTRY
        self.requests = Counter(
            "authsvc_requests",
            "HTTP requests by route template, method and status.",
            ("route", "method", "status"),
            registry=registry,
        )
        self.request_seconds = Histogram(
            "authsvc_request_duration_seconds",
            "Time spent answering, by route template, method and status.",
            ("route", "method", "status"),
            buckets=REQUEST_BUCKETS,
            registry=registry,
        )
        self.cognito_calls = Counter(
            "authsvc_cognito_calls",
            "Cognito calls by operation and outcome class.",
            ("operation", "outcome"),
            registry=registry,
        )
        self.cognito_seconds = Histogram(
            "authsvc_cognito_call_duration_seconds",
            "Cognito call latency by operation and outcome class.",
            ("operation", "outcome"),
            buckets=COGNITO_BUCKETS,
            registry=registry,
        )
        self.counters = {
            name: Counter(name, help_text, labels, registry=registry)
            for name, (help_text, labels) in _COUNTERS.items()
        }
        self.state = {
            name: Gauge(name, help_text, multiprocess_mode=mode, registry=registry)
            for name, (help_text, mode) in STATE_GAUGES.items()
        }
        self.process: dict[str, Gauge] = {}
        self.process_collector: ProcessCollector | None = None
        if multiprocess:
            self.process = {
                name: Gauge(
                    name, f"{name} of each worker.", multiprocess_mode="liveall", registry=None
                )
                for name in _PROCESS_GAUGES
            }
            self.process_collector = ProcessCollector(registry=None)


_objects: _Objects | None = None
_flush_lock = threading.Lock()
_samplers: list[Callable[[], dict[str, float]]] = []
_flusher: threading.Thread | None = None


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def _built() -> _Objects:
    global _objects
    if _objects is None:
        _objects = _Objects(multiprocess_dir() is not None)
    return _objects


def _drain(queue: deque[Any]) -> list[Any]:
    # Only the flusher pops (under _flush_lock); appends during the drain stay for next time.
    pop = queue.popleft
    return [pop() for _ in range(len(queue))]


def _histogram_add(child: Any, values: list[float]) -> None:
    """Add ``values`` to a histogram child: the buckets' counts, then the sum, one increment
    each (prometheus-client keeps per-bucket counts and accumulates them when collected)."""
    bounds = getattr(child, "_upper_bounds", None)
    buckets = getattr(child, "_buckets", None)
    total = getattr(child, "_sum", None)
    if bounds is None or buckets is None or total is None:  # another client version
        for value in values:
            child.observe(value)
        return
    values.sort()  # then one bisection per bucket bound, not one per value
    below = 0
    for bound, bucket in zip(bounds, buckets, strict=True):
        upto = bisect.bisect_right(values, bound)  # values <= bound (the bucket's `le`)
        if upto > below:
            bucket.inc(upto - below)
            below = upto
    total.inc(sum(values))


def flush() -> None:
    """Move what was recorded into prometheus-client's objects; sample the state gauges."""
    with _flush_lock:
        objects = _built()
        requests: dict[tuple[str, str, int], list[float]] = {}
        for item in _drain(_requests):
            key = item[:3]
            values = requests.get(key)
            if values is None:
                requests[key] = [item[3]]
            else:
                values.append(item[3])
        for (route, method, status), values in requests.items():
            request_labels = (route, method if method in _METHODS else "OTHER", str(status))
            objects.requests.labels(*request_labels).inc(len(values))
            _histogram_add(objects.request_seconds.labels(*request_labels), values)
        calls: dict[tuple[str, str], list[float]] = {}
        for operation, outcome, seconds in _drain(_cognito):
            calls.setdefault((operation, outcome), []).append(seconds)
        for pair, durations in calls.items():
            objects.cognito_calls.labels(*pair).inc(len(durations))
            _histogram_add(objects.cognito_seconds.labels(*pair), durations)
        events: dict[tuple[str, tuple[str, ...]], int] = {}
        for event in _drain(_counts):
            events[event] = events.get(event, 0) + 1
        for (name, labels), n in events.items():
            counter = objects.counters[name]
            (counter.labels(*labels) if labels else counter).inc(n)
        for sampler in list(_samplers):
            try:
                sampled = sampler()
            except Exception:  # noqa: BLE001 - a sampler must not stop the others
                log.exception("metrics sampler failed")
                continue
            for name, value in sampled.items():
                gauge = objects.state.get(name)
                if gauge is not None:  # a name not in STATE_GAUGES is not a metric
                    gauge.set(value)
        if objects.process_collector is not None:
            for family in objects.process_collector.collect():
                for sample in family.samples:
                    gauge = objects.process.get(sample.name)
                    if gauge is not None:
                        gauge.set(sample.value)


def add_sampler(sampler: Callable[[], dict[str, float]]) -> None:
    """``sampler()`` returns values for ``STATE_GAUGES``, read at each flush."""
    with _flush_lock:
        _samplers.append(sampler)


def remove_sampler(sampler: Callable[[], dict[str, float]]) -> None:
    with _flush_lock:
        if sampler in _samplers:
            _samplers.remove(sampler)


def start_flusher() -> None:
    """The background flush, once per process (a daemon thread: it needs no stopping)."""
    global _flusher
    with _flush_lock:
        if _flusher is not None and _flusher.is_alive():
            return
        _flusher = threading.Thread(target=_flush_forever, name="metrics-flush", daemon=True)
        _flusher.start()


def _flush_forever() -> None:
    wake = threading.Event()
    while not wake.wait(FLUSH_SECONDS):
        try:
            flush()
        except Exception:  # noqa: BLE001 - keep flushing
            log.exception("metrics flush failed")


_DB_FILE = re.compile(r".*_(\d+)\.db")


def forget_dead_workers(directory: str) -> list[int]:
    """``mark_process_dead`` for every pid with files in ``directory`` that no longer runs
    (its live gauges disappear; its counters and histograms stay, so totals never go
    down). Returns those pids."""
    pids: set[int] = set()
    for path in Path(directory).glob("*.db"):
        match = _DB_FILE.fullmatch(path.name)
        if match:
            pids.add(int(match.group(1)))
    dead = []
    for pid in sorted(pids - {os.getpid()}):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            dead.append(pid)
        except PermissionError:
            pass  # alive, another user's
    for pid in dead:
        mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]
    return dead


def render(extra: Collector | None = None) -> tuple[bytes, str]:
    """The text exposition for a scrape: this process's records flushed first; with a
    multiprocess directory, every worker's; ``extra`` adds values computed at scrape time."""
    flush()
    directory = multiprocess_dir()
    if directory:
        forget_dead_workers(directory)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)  # type: ignore[no-untyped-call]
        body = generate_latest(registry)
    else:
        body = generate_latest(REGISTRY)
    if extra is not None:
        scraped = CollectorRegistry(auto_describe=False)
        scraped.register(extra)
        body += generate_latest(scraped)
    return body, CONTENT_TYPE_LATEST


class MetricsDirError(Exception):
    """The workers' shared metrics directory cannot be used."""


@contextmanager
def multiprocess_directory(workers: int) -> Iterator[str | None]:
    """For ``authsvc serve``: with several workers, the directory their metrics share.

    ``PROMETHEUS_MULTIPROC_DIR`` when set (created, mode 0700, if missing; the operator
    wipes it between runs, as prometheus-client requires); else a fresh private directory
    (0700) under the system's temporary directory, set in the environment the workers
    inherit and removed when the block ends. One worker needs none (None).
    """
    given = multiprocess_dir()
    if given:
        try:
            os.makedirs(given, mode=0o700, exist_ok=True)
        except OSError as exc:
            raise MetricsDirError(
                f"{MULTIPROC_ENV}={given}: cannot create it ({exc.strerror})"
            ) from None
        if not (os.path.isdir(given) and os.access(given, os.W_OK | os.X_OK)):
            raise MetricsDirError(f"{MULTIPROC_ENV}={given}: not a writable directory")
        yield given
        return
    if workers <= 1:
        yield None
        return
    try:
        path = tempfile.mkdtemp(prefix="authsvc-metrics-")  # mode 0700
    except OSError as exc:
        raise MetricsDirError(
            f"cannot create the workers' metrics directory in {tempfile.gettempdir()}"
            f" ({exc.strerror}); set {MULTIPROC_ENV} to a writable directory"
        ) from None
    os.environ[MULTIPROC_ENV] = path
    try:
        yield path
    finally:
        os.environ.pop(MULTIPROC_ENV, None)
        shutil.rmtree(path, ignore_errors=True)
