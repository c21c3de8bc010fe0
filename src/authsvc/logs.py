"""Logging: one JSON object per line in production, short text lines in dev mode.

The access log (one line per request) has a fast path: when the JSON handler set up by
``configure`` is the only one, ``access()`` formats the line itself — once, with no
``LogRecord`` — into the same JSON a ``JsonFormatter`` would write, and the lines finished in
one event-loop turn are written together (one write and flush per turn, not per request).
Anything else (text lines in dev mode, a test's capture handler) takes the ordinary path.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extras = " ".join(
            f"{k}={v}"
            for k, v in vars(record).items()
            if k not in _STANDARD and not k.startswith("_")
        )
        line = f"{record.levelname:<7} {record.name}: {record.getMessage()}"
        if extras:
            line += f" {extras}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO", *, json_lines: bool = True) -> None:
    global _fast_handler
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if json_lines else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _fast_handler = handler if json_lines else None
    root.setLevel(level.upper())
    for noisy in ("botocore", "boto3", "urllib3", "werkzeug", "httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn's own access log repeats ours without the request id.
    logging.getLogger("uvicorn.access").disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True


def uvicorn_log_config() -> dict[str, Any]:
    """Leave uvicorn's loggers to the root handler configured above."""
    return {"version": 1, "disable_existing_loggers": False}


# -- the access log's fast path ----------------------------------------------------------

access_log = logging.getLogger("authsvc.access")
_fast_handler: logging.StreamHandler[TextIO] | None = None
_pending: list[str] = []
_second = -1
_second_text = ""
_encoded: dict[str, str] = {}


def _json_str(value: str) -> str:
    """json.dumps of a route template or method, memoised (they are few)."""
    text = _encoded.get(value)
    if text is None:
        text = json.dumps(value)
        if len(_encoded) < 4096:
            _encoded[value] = text
    return text


def _timestamp(now: float) -> str:
    """What JsonFormatter writes for ``ts``, with the seconds part formatted once a second."""
    global _second, _second_text
    second = int(now)
    if second != _second:
        _second_text = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
        _second = second
    return f"{_second_text}.{int((now - second) * 1000):03d}+00:00"


def _fast_path_open() -> logging.StreamHandler[TextIO] | None:
    handler = _fast_handler
    if handler is None:
        return None
    root = logging.getLogger()
    if (
        len(root.handlers) != 1
        or root.handlers[0] is not handler
        or access_log.handlers
        or access_log.disabled
        or not access_log.propagate
        or access_log.filters
        or handler.filters
        or handler.level > logging.INFO
    ):
        return None
    return handler


def access(
    request_id: str,
    method: str,
    route: str,
    status: int,
    duration_ms: float,
    trace_id: str | None = None,
) -> None:
    """One access-log line: ``{"ts", "level", "logger", "msg": "request", request_id, method,
    route, status, duration_ms}`` (and ``trace_id`` when tracing is on), as JsonFormatter
    would write it."""
    if not access_log.isEnabledFor(logging.INFO):
        return
    handler = _fast_path_open()
    if handler is None:
        extra: dict[str, object] = {
            "request_id": request_id,
            "method": method,
            "route": route,
            "status": status,
            "duration_ms": duration_ms,
        }
        if trace_id is not None:
            extra["trace_id"] = trace_id
        access_log.info("request", extra=extra)
        return
    # request_id matched [A-Za-z0-9._-] or is hex, trace_id is hex: no escaping needed.
    traced = f', "trace_id": "{trace_id}"' if trace_id is not None else ""
    _pending.append(
        f'{{"ts": "{_timestamp(time.time())}", "level": "info", "logger": "authsvc.access",'
        f' "msg": "request", "request_id": "{request_id}", "method": {_json_str(method)},'
        f' "route": {_json_str(route)}, "status": {status}, "duration_ms": {duration_ms!r}'
        f"{traced}}}\n"
    )
    if len(_pending) == 1:
        try:
            asyncio.get_running_loop().call_soon(flush_access)
        except RuntimeError:  # no event loop here: write at once
            flush_access()


def flush_access() -> None:
    """Write the access lines gathered in this event-loop turn (one write, one flush)."""
    handler = _fast_handler
    if not _pending:
        return
    lines = "".join(_pending)
    _pending.clear()
    if handler is None:
        return
    with handler.lock:  # type: ignore[union-attr]  # the same lock its other records take
        try:
            handler.stream.write(lines)
            handler.stream.flush()
        except (OSError, ValueError):
            pass


atexit.register(flush_access)
