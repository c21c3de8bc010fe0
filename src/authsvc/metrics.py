"""A small Prometheus text-format registry (no dependency): counters with labels.

Counters are incremented on the hot path without a lock: each thread adds to its own
shard (a plain dict, so one increment is a dict get and set under the GIL), and ``/metrics``
sums the shards when scraped. Everything else is read off the components at scrape time.
"""

from __future__ import annotations

import threading

Key = tuple[str, tuple[tuple[str, str], ...]]

_local = threading.local()
_shards: list[dict[Key, float]] = []
_shards_lock = threading.Lock()  # taken once per thread, when its shard is created
_help: dict[str, str] = {
    "authsvc_requests_total": "HTTP requests by route template and status.",
    "authsvc_request_duration_seconds_sum": "Total time spent answering, by route template.",
    "authsvc_cognito_calls_total": "Cognito calls by operation and outcome class.",
}


def _shard() -> dict[Key, float]:
    try:
        shard: dict[Key, float] = _local.shard
    except AttributeError:
        shard = {}
        with _shards_lock:
            _shards.append(shard)
        _local.shard = shard
    return shard


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    key = (name, tuple(sorted(labels.items())))
    shard = _shard()
    shard[key] = shard.get(key, 0.0) + amount


# Pre-built keys for the per-request counters: (route, status) -> keys. Route templates and
# statuses are few, so this stays small; it saves building and sorting label tuples.
_request_keys: dict[tuple[str, int], tuple[Key, Key]] = {}


def observe_request(route: str, status: int, seconds: float) -> None:
    """The two per-request counters, on the hot path."""
    keys = _request_keys.get((route, status))
    if keys is None:
        keys = (
            ("authsvc_requests_total", (("route", route), ("status", str(status)))),
            ("authsvc_request_duration_seconds_sum", (("route", route),)),
        )
        _request_keys[(route, status)] = keys
    shard = _shard()
    count, duration = keys
    shard[count] = shard.get(count, 0.0) + 1.0
    shard[duration] = shard.get(duration, 0.0) + seconds


def snapshot() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with _shards_lock:
        shards = list(_shards)
    totals: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for shard in shards:
        for (name, labels), value in shard.copy().items():
            series = totals.setdefault(name, {})
            series[labels] = series.get(labels, 0.0) + value
    return totals


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(gauges: dict[str, tuple[str, float]]) -> str:
    lines: list[str] = []
    for name, series in sorted(snapshot().items()):
        lines.append(f"# HELP {name} {_help.get(name, name)}")
        lines.append(f"# TYPE {name} counter")
        for labels, value in sorted(series.items()):
            rendered = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
            lines.append(f"{name}{{{rendered}}} {value:g}" if rendered else f"{name} {value:g}")
    for name, (help_text, value) in sorted(gauges.items()):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {value:g}")
    return "\n".join(lines) + "\n"
