"""`make bench` cannot rot: its smoke mode runs the whole harness for real (moto, Postgres,
`authsvc serve` with 1 and 2 workers, `authsvc dev`, bare FastAPI, fastapi-users in its own
venv, three instances behind nginx with Redis, wrk) with 1-second phases, and must produce
every row of the issue's table, each measured, with a ratio and a target, and a JSON and a
chart. Never a timing assertion: the numbers of a smoke run mean nothing; what is checked is
that each row was measured and that its verdict follows from its ratio and target."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
# The rows 1-11, with the sub-rows the harness splits them into.
ROWS = ["1", "2", "3", "4a", "4b", "5", "6", "7a", "7b", "8", "9a", "9b", "10a", "10b"]
ROWS += ["11a", "11b", "11c"]
BOUND = re.compile(r"^([≥≤]) ([\d.]+)( ?[a-zA-Z%]+)?$")


def verdict_follows(row: dict) -> bool | None:
    """Whether the row's verdict is what its ratio and target say (None: not a bound).
    A bound with a unit (``≤ 5 ms``) is met at ratio ≤ 1 (ratio = measured ÷ bound); a
    bare one (``≥ 0.85``) compares the ratio itself."""
    match = BOUND.match(row["target"])
    if match is None:
        return None
    sign, number, unit = match.groups()
    limit = 1.0 if unit else float(number)
    meets = row["ratio"] >= limit if sign == "≥" else row["ratio"] <= limit
    return (row["verdict"] == "meets") == meets


@pytest.mark.slow
def test_bench_smoke_produces_a_well_formed_table(postgres_server: str, tmp_path: Path) -> None:
    if shutil.which("wrk") is None and os.geteuid() != 0:
        message = "wrk is missing and only root may install it: apt-get install -y wrk"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env["AUTHSVC_BENCH_POSTGRES_URL"] = postgres_server
    result = subprocess.run(
        [sys.executable, "bench/run.py", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]

    document = json.loads((tmp_path / "smoke.json").read_text())
    assert document["smoke"] is True
    rows = document["rows"]
    assert [row["key"] for row in rows] == ROWS, [row["key"] for row in rows]
    table = result.stdout
    for row in rows:
        # Every row measured (none skipped or "not measured"), with a ratio and a target.
        assert row["value"] not in {"", "—"}, row
        assert "not measured" not in row["note"], row
        assert row["target"], row
        assert isinstance(row["ratio"], float) and math.isfinite(row["ratio"]), row
        # 4b is a difference of medians (through authsvc − direct − one /healthz): with the
        # smoke's 20 samples on a loaded machine it can come out below zero (seen: −0.18 ms
        # in a CI run). Every other row is a quotient of positive measures.
        assert row["ratio"] > 0 or row["key"] == "4b", row
        assert row["verdict"] in {"meets", "MISSES", "reported"}, row
        assert row["verdict"] != "reported" or row["key"] == "11a", row
        assert verdict_follows(row) in {True, None}, row
        # The table printed on stdout carries the same row, ratio and verdict.
        line = next((x for x in table.splitlines() if x.startswith(f"{row['key']} ")), None)
        assert line is not None, row["key"]
        assert row["measure"] in line and f"{row['ratio']:.2f}" in line, line
        assert row["target"] in line and row["verdict"] in line, line
    measured = document["throughput_rps"]
    for name in (
        "bare FastAPI /ping",
        "authsvc /healthz",
        "authsvc /v1/auth/session",
        "authsvc /v1/auth/session, 2 workers",
        "fastapi-users /users/me",
        "3× authsvc via nginx /session",
    ):
        assert measured[name] > 0, (name, measured)
    startup = document["measured"]["startup"]
    assert startup["serve_cpu_s"][0] > 0 and startup["dev_cpu_s"][0] > 0, startup
    png = (tmp_path / "smoke.png").read_bytes()
    assert png.startswith(b"\x89PNG"), "no chart"
