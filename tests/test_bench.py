"""`make bench` cannot rot: its smoke mode runs the whole harness for real (moto, Postgres,
`authsvc serve`, bare FastAPI, wrk) with tiny durations, and must produce a well-formed
table, JSON and chart. Never a timing assertion: the numbers of a smoke run mean nothing."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[1]
ROWS = [str(n) for n in range(1, 12)]  # the rows 1-11


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
    assert sorted({row["key"].rstrip("abc") for row in rows}, key=int) == ROWS, rows
    for row in rows:
        assert row["verdict"] in {"meets", "MISSES", "reported"}, row
        assert row["target"], row
        if row["value"] == "—":  # skipped in smoke mode, and it says so
            assert row["verdict"] == "reported" and "skipped" in row["note"], row
            continue
        if row["ratio"] is not None:
            assert math.isfinite(row["ratio"]) and row["ratio"] > 0, row
        # The table printed on stdout carries the same row.
        assert row["measure"] in result.stdout, row["measure"]
    measured = document["throughput_rps"]
    assert measured["bare FastAPI /ping"] > 0 and measured["authsvc /healthz"] > 0, measured
    png = (tmp_path / "smoke.png").read_bytes()
    assert png.startswith(b"\x89PNG"), "no chart"
