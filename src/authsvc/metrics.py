"""A small Prometheus text-format registry (no dependency): counters with labels.

Request and Cognito-call counters are incremented on the hot path (a dict update under a
lock); everything else is read off the components when ``/metrics`` is scraped.
"""

from __future__ import annotations

import threading
from collections import defaultdict

_lock = threading.Lock()
_counters: dict[str, dict[tuple[tuple[str, str], ...], float]] = defaultdict(dict)
_help: dict[str, str] = {
    "authsvc_requests_total": "HTTP requests by route template and status.",
    "authsvc_request_duration_seconds_sum": "Total time spent answering, by route template.",
    "authsvc_cognito_calls_total": "Cognito calls by operation and outcome.",
}


def inc(name: str, amount: float = 1.0, **labels: str) -> None:
    key = tuple(sorted(labels.items()))
    with _lock:
        series = _counters[name]
        series[key] = series.get(key, 0.0) + amount


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def render(gauges: dict[str, tuple[str, float]]) -> str:
    lines: list[str] = []
    with _lock:
        snapshot = {name: dict(series) for name, series in _counters.items()}
    for name, series in sorted(snapshot.items()):
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
