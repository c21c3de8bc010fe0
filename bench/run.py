"""authsvc benchmarks: ratios against a baseline measured in the same run.

Starts moto's Cognito server and `authsvc serve` as subprocesses on loopback, then times
sequential requests over keep-alive connections:

- GET /v1/auth/session  vs  GET /healthz           (local verification should cost ~nothing)
- POST /v1/auth/sign-in vs  boto3 initiate_auth     (authsvc should add ~nothing to Cognito)
- GET /v1/me            vs  boto3 get_user
- POST /v1/auth/sign-in with the audit log on  vs  the same with it off (a second server)

Usage: python bench/run.py [--requests N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from authsvc import migrate  # noqa: E402
from authsvc.dev.emulator import default_template_path, load_template, provision  # noqa: E402

PASSWORD = "Passw0rd!bench"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def paired(
    baseline: Callable[[], Any], subject: Callable[[], Any], n: int, warmup: int = 30
) -> tuple[list[float], list[float]]:
    """Time baseline and subject alternately, so drift and noise hit both alike."""
    for _ in range(warmup):
        baseline()
        subject()
    a, b = [], []
    for i in range(n):
        order = (baseline, subject) if i % 2 == 0 else (subject, baseline)
        for fn in order:
            t0 = time.perf_counter()
            fn()
            (a if fn is baseline else b).append((time.perf_counter() - t0) * 1000)
    return a, b


def summary(samples: list[float]) -> dict[str, float]:
    samples = sorted(samples)
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 3),
        "mean_ms": round(statistics.fmean(samples), 3),
    }


def dev_startup_seconds(runs: int = 3) -> list[float]:
    """Wall time from `authsvc dev` to its first 200 on /healthz (the issue's "within 10 s")."""
    bin_dir = Path(sys.executable).parent
    times = []
    for _ in range(runs):
        port = free_port()
        data = Path(tempfile.mkdtemp(prefix="authsvc-bench-dev-"))
        started = time.perf_counter()
        proc = subprocess.Popen(
            [str(bin_dir / "authsvc"), "dev", "--port", str(port), "--data-dir", str(data)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz", timeout=60)
            times.append(time.perf_counter() - started)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
    return times


def database_url(tmp: Path) -> str:
    url = os.environ.get("AUTHSVC_BENCH_DATABASE_URL")
    if url:
        return url
    return f"sqlite:///{tmp / 'bench.db'}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    n = args.requests

    tmp = Path(tempfile.mkdtemp(prefix="authsvc-bench-"))
    moto_port, app_port = free_port(), free_port()
    env = {
        **os.environ,
        "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH",
        "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH",
    }
    bin_dir = Path(sys.executable).parent
    moto = subprocess.Popen(
        [str(bin_dir / "moto_server"), "-H", "127.0.0.1", "-p", str(moto_port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    app: subprocess.Popen[bytes] | None = None
    quiet: subprocess.Popen[bytes] | None = None
    try:
        endpoint = f"http://127.0.0.1:{moto_port}"
        wait_http(f"{endpoint}/moto-api/")
        cognito = boto3.client(
            "cognito-idp",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        pool = provision(cognito, load_template(default_template_path()))
        email = "bench@example.com"
        cognito.admin_create_user(
            UserPoolId=pool.user_pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            TemporaryPassword=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "family_name", "Value": "Bench"},
            ],
        )
        cognito.admin_set_user_password(
            UserPoolId=pool.user_pool_id, Username=email, Password=PASSWORD, Permanent=True
        )
        db_url = database_url(tmp)
        migrate.upgrade(db_url)
        app_env = {
            **env,
            "AUTHSVC_COGNITO_USER_POOL_ID": pool.user_pool_id,
            "AUTHSVC_COGNITO_CLIENT_ID": pool.client_id,
            "AUTHSVC_COGNITO_ENDPOINT_URL": endpoint,
            "AUTHSVC_DATABASE_URL": db_url,
            "AUTHSVC_LOG_LEVEL": "WARNING",
            "AUTHSVC_SECRET_KEY": "bench-only-secret-key-0123456789",
            # Limits stay on (their cost is part of each request) but cannot trip here.
            "AUTHSVC_RATE_LIMIT_SIGN_IN_IP": "1000000/minute",
            "AUTHSVC_RATE_LIMIT_REFRESH_IP": "1000000/minute",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
        app = subprocess.Popen(
            [str(bin_dir / "authsvc"), "serve", "--port", str(app_port), "--workers", "1"],
            env=app_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        quiet_port = free_port()
        quiet = subprocess.Popen(
            [str(bin_dir / "authsvc"), "serve", "--port", str(quiet_port), "--workers", "1"],
            env={**app_env, "AUTHSVC_AUDIT_ENABLED": "false"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{app_port}"
        wait_http(f"{base}/healthz")
        wait_http(f"http://127.0.0.1:{quiet_port}/healthz")

        results: dict[str, dict[str, float]] = {}
        with (
            httpx.Client(base_url=base, timeout=10.0) as http,
            httpx.Client(base_url=f"http://127.0.0.1:{quiet_port}", timeout=10.0) as no_audit,
        ):
            body = {"email": email, "password": PASSWORD}
            tokens = http.post("/v1/auth/sign-in", json=body).json()
            bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
            assert http.get("/v1/auth/session", headers=bearer).status_code == 200

            pairs = {
                ("healthz", "session"): (
                    lambda: http.get("/healthz"),
                    lambda: http.get("/v1/auth/session", headers=bearer),
                    n,
                ),
                ("cognito_initiate_auth", "sign_in"): (
                    lambda: cognito.initiate_auth(
                        ClientId=pool.client_id,
                        AuthFlow="USER_PASSWORD_AUTH",
                        AuthParameters={"USERNAME": email, "PASSWORD": PASSWORD},
                    ),
                    lambda: http.post("/v1/auth/sign-in", json=body),
                    n // 2,
                ),
                ("sign_in_audit_off", "sign_in_audit_on"): (
                    lambda: no_audit.post("/v1/auth/sign-in", json=body),
                    lambda: http.post("/v1/auth/sign-in", json=body),
                    n // 2,
                ),
                ("cognito_get_user", "me"): (
                    lambda: cognito.get_user(AccessToken=tokens["access_token"]),
                    lambda: http.get("/v1/me", headers=bearer),
                    n // 2,
                ),
            }
            ratios: dict[str, dict[str, float]] = {}
            for (base_name, name), (base_fn, fn, count) in pairs.items():
                base_samples, samples = paired(base_fn, fn, count)
                results[base_name] = summary(base_samples)
                results[name] = summary(samples)
                ratios[f"{name} / {base_name}"] = {
                    "ratio_p50": round(results[name]["p50_ms"] / results[base_name]["p50_ms"], 3),
                    "added_ms_p50": round(
                        results[name]["p50_ms"] - results[base_name]["p50_ms"], 3
                    ),
                }

        print(f"authsvc bench — {n} requests per HTTP case, sequential, keep-alive, loopback")
        print(f"database: {db_url.split('@')[-1]}")
        print(f"{'case':<24}{'p50 ms':>10}{'p95 ms':>10}{'mean ms':>10}")
        for name, row in results.items():
            print(f"{name:<24}{row['p50_ms']:>10.3f}{row['p95_ms']:>10.3f}{row['mean_ms']:>10.3f}")
        print()
        for name, row in ratios.items():
            print(f"{name:<34} {row['ratio_p50']:5.2f}x  (+{row['added_ms_p50']:.2f} ms at p50)")
        startup = dev_startup_seconds()
        print(
            f"\nauthsvc dev ready in {statistics.median(startup):.2f} s (median of {len(startup)};"
            f" runs: {', '.join(f'{t:.2f}' for t in startup)}; target < 10 s)"
        )
        if args.json:
            args.json.write_text(json.dumps({"results": results, "ratios": ratios}, indent=2))
    finally:
        for proc in (app, quiet, moto):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
