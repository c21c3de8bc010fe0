"""authsvc benchmarks (issue 12): every row a ratio against a baseline measured in the same run.

Starts everything itself on loopback: moto's Cognito server, a bench database in the local
Postgres (dropped afterwards), `authsvc serve` with 1 and 2 workers, bare FastAPI (the
framework ceiling, same uvicorn settings), fastapi-users in its own venv (bench/.peers/),
and for the scale-out row three `authsvc serve` behind nginx sharing Postgres and Redis.
Load comes from wrk (2 threads, 32 connections), installed with apt-get when missing.

    python bench/run.py                # the full run (`make bench`, under 8 minutes)
    python bench/run.py --smoke        # a few seconds per phase: checks the harness works

Prints one table (row, measured, ratio, target, verdict) and writes bench/results/latest.json
and bench/results/latest.png. Timings are never asserted by tests; the smoke test only
checks that the harness produces a well-formed table.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import http.client
import itertools
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
PEERS = BENCH / ".peers"
sys.path.insert(0, str(ROOT / "src"))

from authsvc import cursors, migrate  # noqa: E402
from authsvc.dev.emulator import default_template_path, load_template, provision  # noqa: E402

PASSWORD = "Passw0rd!bench"
METRICS_TOKEN = "bench-metrics-token"
BIN = Path(sys.executable).parent
POSTGRES_ADMIN = os.environ.get(
    "AUTHSVC_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("AUTHSVC_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
FASTAPI_USERS_PACKAGES = ["fastapi-users[sqlalchemy]", "aiosqlite", "uvicorn[standard]"]


# --------------------------------------------------------------------------- plumbing


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http_status(url: str, timeout: float = 1.0) -> int | None:
    """One GET with the standard library's client (no client object, SSL context or
    connection pool to build per poll: cheap for a start-up being timed on the same CPUs)."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=timeout)
    try:
        connection.request("GET", parts.path or "/")
        return connection.getresponse().status
    except OSError:
        return None
    finally:
        connection.close()


def wait_http(url: str, timeout: float = 180.0, ok: Callable[[int], bool] | None = None) -> float:
    """Poll ``url`` until it answers (below 500, or ``ok``); returns the time it took."""
    started = time.perf_counter()
    deadline = time.monotonic() + timeout
    accept = ok or (lambda status: status < 500)
    while time.monotonic() < deadline:
        status = http_status(url)
        if status is not None and accept(status):
            return time.perf_counter() - started
        time.sleep(0.01)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f} s")


def cpu_seconds(pid: int) -> float:
    """user + system CPU time a process has used so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def compile_sources() -> None:
    """Byte-compile authsvc and its migrations, as `pip install` does for an installed
    package (the image runs from one). An editable install under PYTHONDONTWRITEBYTECODE
    (set on this machine) would otherwise compile every module from source at each start:
    ~0.25 s of CPU per `authsvc serve` that no deployment pays."""
    import compileall

    for folder in (ROOT / "src" / "authsvc", ROOT / "migrations"):
        compileall.compile_dir(str(folder), quiet=1, workers=1)


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path
    spawned: float = field(default_factory=time.perf_counter)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class Run:
    smoke: bool
    tmp: Path
    procs: list[Proc] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: dict[str, str], port: int, cwd: Path | None = None
    ) -> Proc:
        log_path = self.tmp / f"{name}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=cwd or ROOT
            )
        proc = Proc(name, popen, port, log_path)
        self.procs.append(proc)
        return proc

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()


def run_quiet(argv: list[str], **kwargs: Any) -> None:
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)


def ensure_debian_tools(names: dict[str, str]) -> list[str]:
    """Install missing tools from Debian (as root, like .ci/run installs chromium).
    ``names``: binary -> package. Returns the binaries still missing."""
    missing = {b: p for b, p in names.items() if shutil.which(b) is None}
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        packages = sorted(set(missing.values()))
        log(f"installing {' '.join(packages)} with apt-get")
        try:
            run_quiet(["apt-get", "install", "-y", *packages], env=env)
        except subprocess.CalledProcessError:
            run_quiet(["apt-get", "update"], env=env)
            run_quiet(["apt-get", "install", "-y", *packages], env=env)
    return [b for b in names if shutil.which(b) is None]


# --------------------------------------------------------------------------- load


@dataclass
class Load:
    rps: float
    requests: int
    errors: int
    p50_ms: float | None = None
    p99_ms: float | None = None


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        return float("nan")
    return float(match.group(1)) * _UNITS[match.group(2)]


def wrk(
    url: str,
    seconds: float,
    *,
    headers: dict[str, str] | None = None,
    script: Path | None = None,
    connections: int = 32,
    threads: int = 2,
) -> Load:
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for key, value in (headers or {}).items():
        argv += ["-H", f"{key}: {value}"]
    if script is not None:
        argv += ["-s", str(script)]
    out = subprocess.run(argv + [url], check=True, capture_output=True, text=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(x) for x in m.groups())
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    return Load(
        rps,
        requests,
        errors,
        _ms(p50.group(1)) if p50 else None,
        _ms(p99.group(1)) if p99 else None,
    )


def threaded(fn_factory: Callable[[], Callable[[], bool]], clients: int, seconds: float) -> Load:
    """``clients`` threads calling their own ``fn`` as fast as they can; fn returns ok."""
    counts = [0] * clients
    fails = [0] * clients
    barrier = threading.Barrier(clients + 1)

    def worker(i: int) -> None:
        fn = fn_factory()
        barrier.wait()  # every client built before the clock starts
        stop = time.monotonic() + seconds
        while time.monotonic() < stop:
            if fn():
                counts[i] += 1
            else:
                fails[i] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.monotonic()
    for t in threads:
        t.join()
    took = time.monotonic() - started
    return Load(sum(counts) / took, sum(counts), sum(fails))


def sample_ms(fn: Callable[[], Any], n: int, warmup: int = 20) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def paired(fns: list[Callable[[], Any]], n: int, warmup: int = 20) -> list[list[float]]:
    """Time the functions round-robin (order rotating), so drift and noise hit all alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples: list[list[float]] = [[] for _ in fns]
    for i in range(n):
        order = list(range(len(fns)))
        order = order[i % len(order) :] + order[: i % len(order)]
        for k in order:
            t0 = time.perf_counter()
            fns[k]()
            samples[k].append((time.perf_counter() - t0) * 1000)
    return samples


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    text = Path(f"/proc/{pid}/status").read_text()
    kb = int(re.search(r"VmRSS:\s+(\d+) kB", text).group(1))  # type: ignore[union-attr]
    return kb / 1024


# --------------------------------------------------------------------------- the table


@dataclass
class Row:
    key: str
    measure: str
    value: str
    ratio: float | None
    target: str
    ok: bool | None  # None: reported only / not measured
    note: str = ""

    @property
    def verdict(self) -> str:
        return {True: "meets", False: "MISSES", None: "reported"}[self.ok]


def of_bound(value: float, bound: float) -> float:
    """The ratio shown for a row with an absolute target: the measured value ÷ the bound
    (≤ 1.00 meets an upper bound)."""
    return value / bound


def print_table(rows: list[Row], header: str) -> str:
    lines = [header, ""]
    widths = (4, 54, 36, 8, 22, 8)
    titles = ("#", "measure", "measured", "ratio", "target", "verdict")
    lines.append("  ".join(t.ljust(w) for t, w in zip(titles, widths, strict=True)))
    lines.append("  ".join("-" * w for w in widths))
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}"
        cells = (r.key, r.measure, r.value, ratio, r.target, r.verdict)
        lines.append("  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)))
        if r.note:
            lines.append(f"{'':6}{r.note}")
    text = "\n".join(lines)
    print(text, flush=True)
    return text


def chart(rows: list[Row], throughput: dict[str, float], path: Path, title: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no chart (pip install matplotlib)")
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    names = list(throughput)
    left.barh(names, [throughput[n] for n in names], color="#4c72b0")
    left.set_xlabel("requests/s (wrk, 2 threads, 32 connections)")
    left.set_title("Throughput, same run")
    left.invert_yaxis()
    for i, n in enumerate(names):
        left.text(throughput[n], i, f" {throughput[n]:,.0f}", va="center", fontsize=8)
    rated = [r for r in rows if r.ratio is not None]
    labels = [f"{r.key}: {r.measure[:38]}" for r in rated]
    colors = {True: "#55a868", False: "#c44e52", None: "#8c8c8c"}
    right.barh(labels, [r.ratio or 0 for r in rated], color=[colors[r.ok] for r in rated])
    right.set_xlabel("ratio (green: meets target, red: misses)")
    right.set_title("Ratios against their baselines")
    right.invert_yaxis()
    right.tick_params(axis="y", labelsize=7)
    for i, r in enumerate(rated):
        right.text(r.ratio or 0, i, f" {r.ratio:.2f} (target {r.target})", va="center", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True


# --------------------------------------------------------------------------- setup


@dataclass
class Cognito:
    endpoint: str
    pool_id: str
    client_id: str
    client_secret: str | None
    client: Any

    def secret_hash(self, username: str) -> str | None:
        if not self.client_secret:
            return None
        digest = hmac.new(
            self.client_secret.encode(), (username + self.client_id).encode(), hashlib.sha256
        ).digest()
        return base64.b64encode(digest).decode()

    def initiate_auth(self, email: str, client: Any = None) -> dict[str, Any]:
        params = {"USERNAME": email, "PASSWORD": PASSWORD}
        if (secret := self.secret_hash(email)) is not None:
            params["SECRET_HASH"] = secret
        result: dict[str, Any] = (client or self.client).initiate_auth(
            ClientId=self.client_id, AuthFlow="USER_PASSWORD_AUTH", AuthParameters=params
        )
        return result

    def boto(self) -> Any:
        return boto3.client(
            "cognito-idp",
            endpoint_url=self.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def user(self, email: str, groups: tuple[str, ...] = ()) -> str:
        self.client.admin_create_user(
            UserPoolId=self.pool_id,
            Username=email,
            MessageAction="SUPPRESS",
            TemporaryPassword=PASSWORD,
            UserAttributes=[
                {"Name": "email", "Value": email},
                {"Name": "email_verified", "Value": "true"},
                {"Name": "family_name", "Value": "Bench"},
            ],
        )
        self.client.admin_set_user_password(
            UserPoolId=self.pool_id, Username=email, Password=PASSWORD, Permanent=True
        )
        for group in groups:
            self.client.admin_add_user_to_group(
                UserPoolId=self.pool_id, Username=email, GroupName=group
            )
        return str(self.initiate_auth(email)["AuthenticationResult"]["AccessToken"])


def start_moto(run: Run) -> Cognito:
    port = free_port()
    env = {
        **os.environ,
        "MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY": "HASH",
        "MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY": "HASH",
    }
    run.start("moto", [str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env, port)
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(f"{endpoint}/moto-api/")
    client = boto3.client(
        "cognito-idp",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    pool = provision(client, load_template(default_template_path()))
    return Cognito(endpoint, pool.user_pool_id, pool.client_id, pool.client_secret, client)


@contextmanager
def bench_database() -> Iterator[str]:
    """A database of its own in the local Postgres, migrated, dropped afterwards."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"authsvc_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_ADMIN).set(database=name).render_as_string(hide_password=False)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def serve_env(cognito: Cognito, database_url: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
    env.update(
        {
            "AUTHSVC_COGNITO_USER_POOL_ID": cognito.pool_id,
            "AUTHSVC_COGNITO_CLIENT_ID": cognito.client_id,
            "AUTHSVC_COGNITO_ENDPOINT_URL": cognito.endpoint,
            "AUTHSVC_DATABASE_URL": database_url,
            "AUTHSVC_SECRET_KEY": "bench-only-secret-key-0123456789",
            "AUTHSVC_METRICS_TOKEN": METRICS_TOKEN,
            # The access log stays on: its cost is part of every request.
            "AUTHSVC_LOG_LEVEL": "INFO",
            # Throughput rows drive one client address far past the per-IP limits, and
            # moto far past the account's Cognito quotas: both off here (row 11 has them on).
            "AUTHSVC_RATE_LIMITS_ENABLED": "false",
            "AUTHSVC_COGNITO_BUDGET_USER_AUTHENTICATION": "0",
            "AUTHSVC_COGNITO_BUDGET_USER_READ": "0",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    if cognito.client_secret:
        env["AUTHSVC_COGNITO_CLIENT_SECRET"] = cognito.client_secret
    env.update({f"AUTHSVC_{k.upper()}": v for k, v in settings.items()})
    return env


def start_serve(run: Run, name: str, env: dict[str, str], workers: int = 1) -> Proc:
    port = free_port()
    argv = [str(BIN / "authsvc"), "serve", "--port", str(port), "--workers", str(workers)]
    return run.start(name, argv, env, port)


def ready(proc: Proc, timeout: float = 180.0) -> float:
    """Seconds from now until ``proc`` answers /readyz with 200."""
    return wait_http(f"{proc.base}/readyz", timeout, ok=lambda s: s == 200)


def ready_all(procs: list[Proc], timeout: float = 180.0) -> dict[str, float]:
    """Wait for several instances at once (one poller each): seconds from each one's spawn
    until its /readyz answered 200, and its CPU seconds until then (``name:cpu``)."""
    took: dict[str, float] = {}
    failed: list[BaseException] = []

    def one(proc: Proc) -> None:
        try:
            ready(proc, timeout)
            took[proc.name] = time.perf_counter() - proc.spawned
            took[f"{proc.name}:cpu"] = cpu_seconds(proc.popen.pid)
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller
            failed.append(exc)

    threads = [threading.Thread(target=one, args=(proc,)) for proc in procs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed:
        raise failed[0]
    return took


def uvicorn_argv(python: Path, app: str, port: int) -> list[str]:
    # The same server settings as `authsvc serve` (cli.py): uvloop and httptools from
    # uvicorn[standard], one worker, no server header; no uvicorn access log.
    return [
        str(python),
        "-m",
        "uvicorn",
        app,
        "--port",
        str(port),
        "--workers",
        "1",
        "--no-access-log",
        "--no-server-header",
        "--log-level",
        "warning",
    ]


def fastapi_users_python() -> Path | None:
    """The peer's own venv (bench/.peers/fastapi-users, gitignored), created on the first
    run, the smoke run's too; None (row 3 then says why) when pip cannot install it."""
    venv = PEERS / "fastapi-users"
    python = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists():
        return python
    log("creating bench/.peers/fastapi-users (its own venv, once)")
    try:
        run_quiet([sys.executable, "-m", "venv", "--clear", str(venv)])
        run_quiet([str(python), "-m", "pip", "install", "--quiet", *FASTAPI_USERS_PACKAGES])
    except subprocess.CalledProcessError:
        log("could not install the fastapi-users peer (pip failed): row 3 is not measured")
        return None
    stamp.touch()
    return python


def fastapi_users_token(base: str) -> str:
    email = "bench@example.com"
    with httpx.Client(base_url=base, timeout=10) as http:
        http.post("/auth/register", json={"email": email, "password": PASSWORD})
        login = http.post("/auth/jwt/login", data={"username": email, "password": PASSWORD})
        login.raise_for_status()
        token = str(login.json()["access_token"])
        assert http.get("/users/me", headers={"Authorization": f"Bearer {token}"}).is_success
    return token


# --------------------------------------------------------------------------- invitations

INSERT_INVITATIONS = """
INSERT INTO invitation (id, email, given_name, family_name, attributes, groups, status,
                        token_hash, invited_by, created_at, updated_at, expires_at)
SELECT gen_random_uuid(), 'invitee-' || i || '@example.com', 'Bench', 'Invitee', '{}', '[]',
       CASE WHEN i % 10 = 0 THEN 'pending' WHEN i % 10 < 7 THEN 'accepted' ELSE 'expired' END,
       encode(sha256(('bench-invitation-token-' || i)::bytea), 'hex'), 'bench',
       now() - make_interval(secs => i), now() - make_interval(secs => i),
       now() + interval '7 days'
FROM generate_series(CAST(:start AS integer), CAST(:stop AS integer)) AS i
"""


def fill_invitations(database_url: str, start: int, stop: int) -> float:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text(INSERT_INVITATIONS), {"start": start, "stop": stop})
    # A table that has been in use has been vacuumed by autovacuum: its pages' hint bits and
    # visibility map are set. A freshly bulk-loaded one has neither, and each first read of
    # a heap page would write it back (the lookup's tail would measure the bulk load).
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(
            text("VACUUM (ANALYZE) invitation")
        )
    engine.dispose()
    return time.perf_counter() - t0


def deep_cursor(database_url: str, offset: int) -> str:
    from sqlalchemy import create_engine, text

    engine = create_engine(database_url)
    with engine.connect() as conn:
        at, id = conn.execute(
            text(
                "SELECT created_at, id FROM invitation ORDER BY created_at DESC, id DESC"
                " OFFSET :offset LIMIT 1"
            ),
            {"offset": offset},
        ).one()
    engine.dispose()
    return cursors.encode(at, id)


def lookup_samples(base: str, count: int, n: int) -> list[float]:
    """Sequential lookups of live (pending) tokens spread over the table."""
    pending = [i for i in range(10, count + 1, 10)]
    step = max(1, len(pending) // max(1, n))
    tokens = [f"bench-invitation-token-{i}" for i in pending[::step]][:n]
    with httpx.Client(base_url=base, timeout=10) as http:
        answer = http.post("/v1/invitations/lookup", json={"token": tokens[0]})
        assert answer.status_code == 200, answer.text
        it = itertools.cycle(tokens)
        return sample_ms(
            lambda: http.post("/v1/invitations/lookup", json={"token": next(it)}),
            n,
            warmup=min(20, n),
        )


# --------------------------------------------------------------------------- scale-out

NGINX_CONF = """
worker_processes 1;
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    upstream three {{ {three} keepalive 64; }}
    upstream one {{ {one} keepalive 64; }}
    server {{
        listen 127.0.0.1:{port3};
        location / {{
            proxy_pass http://three; proxy_http_version 1.1;
            proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
    server {{
        listen 127.0.0.1:{port1};
        location / {{
            proxy_pass http://one; proxy_http_version 1.1;
            proxy_set_header Connection ""; proxy_set_header X-Forwarded-For $remote_addr;
        }}
    }}
}}
"""


SIGN_IN_LIMIT = 20  # the per-IP sign-in limit row 11c checks across the instances


def start_scale_instances(
    run: Run, cognito: Cognito, database_url: str
) -> tuple[list[Proc], str | None]:
    """Three `authsvc serve` sharing Postgres and Redis, rate limits on (row 11); or none and
    why not (nginx or Redis unavailable)."""
    missing = ensure_debian_tools({"nginx": "nginx-light"})
    import redis

    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=1).ping()
    except redis.RedisError:
        missing.append(f"Redis at {REDIS_URL}")
    if missing:
        return [], f"not measured: {', '.join(missing)} unavailable"
    # Per-IP sign-in limit on, shared through Redis; the rate-limit probe below comes from a
    # fresh (forwarded) address each run, so earlier runs' counters do not matter.
    env = serve_env(
        cognito,
        database_url,
        redis_url=REDIS_URL,
        rate_limits_enabled="true",
        rate_limit_sign_in_ip=f"{SIGN_IN_LIMIT}/hour",
        trusted_proxies="127.0.0.1/32",
    )
    return [start_serve(run, f"scale-{i}", env) for i in range(3)], None


def scale_out(
    run: Run, cognito: Cognito, instances: list[Proc], seconds: float
) -> tuple[list[Row], dict[str, float]]:
    limit = SIGN_IN_LIMIT
    ready_all(instances)
    port3, port1 = free_port(), free_port()
    conf = run.tmp / "nginx.conf"
    conf.write_text(
        NGINX_CONF.format(
            tmp=run.tmp,
            port3=port3,
            port1=port1,
            three=" ".join(f"server 127.0.0.1:{p.port};" for p in instances),
            one=f"server 127.0.0.1:{instances[0].port};",
        )
    )
    nginx = run.start("nginx", ["nginx", "-c", str(conf), "-p", str(run.tmp)], dict(os.environ), 0)
    wait_http(f"http://127.0.0.1:{port3}/healthz")
    wait_http(f"http://127.0.0.1:{port1}/healthz")
    email = f"scale-{uuid.uuid4().hex[:8]}@example.com"
    token = cognito.user(email)
    bearer = {"Authorization": f"Bearer {token}"}
    one = wrk(f"http://127.0.0.1:{port1}/v1/auth/session", seconds, headers=bearer)
    three = wrk(f"http://127.0.0.1:{port3}/v1/auth/session", seconds, headers=bearer)
    rows = [
        Row(
            "11a",
            "scale-out: /v1/auth/session, 3 instances ÷ 1 (nginx)",
            f"{three.rps:,.0f} vs {one.rps:,.0f} req/s",
            three.rps / one.rps,
            "reported",
            None,
            "2 cores: three instances share the CPU with nginx and wrk",
        )
    ]

    # Sign-out on one instance, under load through nginx: how long until the others refuse.
    load = threading.Thread(
        target=wrk,
        args=(f"http://127.0.0.1:{port3}/v1/auth/session", max(2.0, seconds)),
        kwargs={"headers": bearer},
    )
    load.start()
    time.sleep(0.5)
    with httpx.Client(timeout=10) as http:
        signed = http.post(
            f"{instances[0].base}/v1/auth/sign-in", json={"email": email, "password": PASSWORD}
        ).json()
        victim = {"Authorization": f"Bearer {signed['access_token']}"}
        for proc in instances:
            assert http.get(f"{proc.base}/v1/auth/session", headers=victim).status_code == 200
        out = http.post(f"{instances[0].base}/v1/auth/sign-out", headers=victim)
        assert out.status_code == 204, out.text
        t0 = time.perf_counter()
        refused_after: dict[str, float] = {}
        while len(refused_after) < 2 and time.perf_counter() - t0 < 5:
            for proc in instances[1:]:
                if proc.name in refused_after:
                    continue
                status = http.get(f"{proc.base}/v1/auth/session", headers=victim).status_code
                if status == 401:
                    refused_after[proc.name] = time.perf_counter() - t0
            time.sleep(0.01)
    load.join()
    worst = max(refused_after.values()) if len(refused_after) == 2 else float("inf")
    rows.append(
        Row(
            "11b",
            "scale-out: sign-out on one, refused on the others",
            f"after {worst * 1000:.0f} ms (worst of 2, under load)",
            of_bound(worst, 1.0),
            "≤ 1 s",
            worst <= 1.0,
        )
    )

    # The per-IP sign-in limit, shared through Redis: requests spread over the 3 instances.
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    statuses: list[int] = []
    with httpx.Client(timeout=10) as http:
        for i in range(limit + 10):
            proc = instances[i % 3]
            answer = http.post(
                f"{proc.base}/v1/auth/sign-in",
                json={"email": email, "password": PASSWORD},
                headers={"X-Forwarded-For": address},
            )
            statuses.append(answer.status_code)
    allowed = sum(1 for s in statuses if s == 200)
    limited = sum(1 for s in statuses if s == 429)
    rows.append(
        Row(
            "11c",
            f"scale-out: per-IP sign-in limit {limit}/h across 3",
            f"{allowed} allowed, {limited} refused of {len(statuses)}",
            allowed / limit,
            f"= {limit} allowed",
            allowed == limit and limited == len(statuses) - limit,
        )
    )
    nginx.stop()
    for proc in instances:
        proc.stop()
    return rows, {
        "3× authsvc via nginx /session": three.rps,
        "1× authsvc via nginx /session": one.rps,
    }


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="a few seconds per phase")
    parser.add_argument("--seconds", type=float, default=None, help="wrk duration per run")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved throughput rounds")
    parser.add_argument("--out", type=Path, default=RESULTS, help="where latest.json/png go")
    args = parser.parse_args()
    smoke = args.smoke
    seconds = args.seconds or (1.0 if smoke else 5.0)
    rounds = args.rounds or (1 if smoke else 3)
    n_seq = 20 if smoke else 200
    # Rows 7 and 8 are p99s of ~2-6 ms requests: 1,000 samples (10 in the tail, not 2) for
    # a few seconds more.
    n_tail = 20 if smoke else 1000
    invitations = (1_000, 5_000) if smoke else (1_000, 1_000_000)
    rss_steps = (2_000, 4_000) if smoke else (50_000, 100_000)
    began = time.perf_counter()

    missing = ensure_debian_tools({"wrk": "wrk"})
    if missing:
        print("bench: wrk is missing; install it as root: apt-get install -y wrk", file=sys.stderr)
        return 2
    run = Run(smoke, Path(tempfile.mkdtemp(prefix="authsvc-bench-")))
    rows: list[Row] = []
    throughput: dict[str, float] = {}
    measured: dict[str, Any] = {}
    try:
        compile_sources()
        log("moto, bench database, peers")
        cognito = start_moto(run)
        with bench_database() as database_url:
            email = "bench@example.com"
            token = cognito.user(email)
            admin_token = cognito.user("bench-admin@example.com", groups=("admin",))
            bearer = {"Authorization": f"Bearer {token}"}

            env = serve_env(cognito, database_url)
            bare_port = free_port()
            bare_argv = uvicorn_argv(Path(sys.executable), "bench.peers.bare:app", bare_port)
            fu_python = fastapi_users_python()
            fu_env = {**os.environ, "FASTAPI_USERS_DB": str(run.tmp / "fastapi-users.db")}

            def start_bare() -> Proc:
                return run.start("bare-fastapi", bare_argv, dict(os.environ), bare_port)

            def start_fu() -> Proc | None:
                if fu_python is None:
                    return None
                port = free_port()
                argv = uvicorn_argv(fu_python, "fastapi_users_app:app", port)
                return run.start("fastapi-users", argv, fu_env, port, cwd=BENCH / "peers")

            def start_dev(i: int) -> Proc:
                port = free_port()
                argv = [str(BIN / "authsvc"), "dev", "--port", str(port)]
                argv += ["--data-dir", str(run.tmp / f"dev-{i}")]
                dev_env = {k: v for k, v in os.environ.items() if not k.startswith("AUTHSVC_")}
                return run.start(f"dev-{i}", argv, dev_env, port)

            scale: list[Proc] = []
            scale_missing: str | None = None
            if smoke:
                # Every process the run needs starts at once (8 on 2 cores: the start-up
                # times of a smoke run are under that load, and mean nothing).
                one = start_serve(run, "serve-1w", env)
                two = start_serve(run, "serve-2w", env, workers=2)
                dev = start_dev(0)
                scale, scale_missing = start_scale_instances(run, cognito, database_url)
                bare, fu = start_bare(), start_fu()
                took = ready_all([one, two, dev])
                serve_times, serve_cpu = [took[one.name]], [took[f"{one.name}:cpu"]]
                dev_times, dev_cpu = [took[dev.name]], [took[f"{dev.name}:cpu"]]
                dev.stop()
            else:
                # Row 10 first, on a quiet machine, one at a time: start to ready.
                serve_times, serve_cpu = [], []
                for i in range(3):
                    proc = start_serve(run, f"startup-{i}", env)
                    took = ready_all([proc])
                    serve_times.append(took[proc.name])
                    serve_cpu.append(took[f"{proc.name}:cpu"])
                    proc.stop()
                dev_times, dev_cpu = [], []
                for i in range(2):
                    proc = start_dev(i)
                    took = ready_all([proc])
                    dev_times.append(took[proc.name])
                    dev_cpu.append(took[f"{proc.name}:cpu"])
                    proc.stop()
                one = start_serve(run, "serve-1w", env)
                two = start_serve(run, "serve-2w", env, workers=2)
                bare, fu = start_bare(), start_fu()
                ready_all([one, two])
            measured["startup"] = {
                "serve_s": serve_times,
                "serve_cpu_s": serve_cpu,
                "dev_s": dev_times,
                "dev_cpu_s": dev_cpu,
            }
            started = [one, two]
            wait_http(f"{bare.base}/ping")
            fu_bearer = {}
            if fu is not None:
                wait_http(f"{fu.base}/docs")
                fu_bearer = {"Authorization": f"Bearer {fastapi_users_token(fu.base)}"}
                # Its first second under 32 connections is an outlier (a smoke run measured
                # 1 request in it): warm it up like the others' start-up checks warm them.
                wrk(f"{fu.base}/users/me", 1, headers=fu_bearer)
            with httpx.Client(timeout=10) as http:
                for proc in started:
                    answer = http.get(f"{proc.base}/v1/auth/session", headers=bearer)
                    assert answer.status_code == 200, answer.text

            # Rows 1, 2, 3, 6: interleaved wrk rounds, ratios taken per round.
            log(f"throughput: {rounds} interleaved rounds of {seconds:.0f} s per target")
            targets: dict[str, tuple[str, dict[str, str]]] = {
                "bare FastAPI /ping": (f"{bare.base}/ping", {}),
                "authsvc /healthz": (f"{one.base}/healthz", {}),
                "authsvc /v1/auth/session": (f"{one.base}/v1/auth/session", bearer),
                "authsvc /v1/auth/session, 2 workers": (f"{two.base}/v1/auth/session", bearer),
            }
            if fu is not None:
                targets["fastapi-users /users/me"] = (f"{fu.base}/users/me", fu_bearer)
            loads: dict[str, list[Load]] = {name: [] for name in targets}
            for r in range(rounds):
                names = list(targets)
                names = names[r % len(names) :] + names[: r % len(names)]
                for name in names:
                    url, headers = targets[name]
                    loads[name].append(wrk(url, seconds, headers=headers))
            rps = {name: [x.rps for x in xs] for name, xs in loads.items()}
            measured["throughput"] = {name: [x.__dict__ for x in xs] for name, xs in loads.items()}
            for name, values in rps.items():
                throughput[name] = statistics.median(values)
            errors = {name: sum(x.errors for x in xs) for name, xs in loads.items()}

            def per_round(a: str, b: str) -> float:
                return statistics.median(x / y for x, y in zip(rps[a], rps[b], strict=True))

            bare_rps = throughput["bare FastAPI /ping"]
            r1 = per_round("authsvc /healthz", "bare FastAPI /ping")
            rows.append(
                Row(
                    "1",
                    "/healthz ÷ bare FastAPI /ping (req/s)",
                    f"{throughput['authsvc /healthz']:,.0f} vs {bare_rps:,.0f}",
                    r1,
                    "≥ 0.85",
                    r1 >= 0.85,
                )
            )
            r2 = per_round("authsvc /v1/auth/session", "bare FastAPI /ping")
            rows.append(
                Row(
                    "2",
                    "/v1/auth/session ÷ bare FastAPI /ping (req/s)",
                    f"{throughput['authsvc /v1/auth/session']:,.0f} vs {bare_rps:,.0f}",
                    r2,
                    "≥ 0.70",
                    r2 >= 0.70,
                )
            )
            if fu is not None:
                r3 = per_round("authsvc /v1/auth/session", "fastapi-users /users/me")
                rows.append(
                    Row(
                        "3",
                        "/v1/auth/session ÷ fastapi-users /users/me",
                        f"{throughput['authsvc /v1/auth/session']:,.0f} vs"
                        f" {throughput['fastapi-users /users/me']:,.0f}",
                        r3,
                        "≥ 10",
                        r3 >= 10,
                    )
                )
            else:
                rows.append(
                    Row(
                        "3",
                        "/v1/auth/session ÷ fastapi-users /users/me",
                        "—",
                        None,
                        "≥ 10",
                        False,
                        "not measured: the fastapi-users peer could not be installed",
                    )
                )
            r6 = per_round("authsvc /v1/auth/session, 2 workers", "authsvc /v1/auth/session")
            rows.append(
                Row(
                    "6",
                    "/v1/auth/session: 2 workers ÷ 1 worker",
                    f"{throughput['authsvc /v1/auth/session, 2 workers']:,.0f} vs"
                    f" {throughput['authsvc /v1/auth/session']:,.0f}",
                    r6,
                    "≥ 1.7",
                    r6 >= 1.7,
                    "wrk's own 2 threads share the same 2 cores",
                )
            )
            two.stop()
            if fu is not None:
                fu.stop()

            # Row 4: sequential sign-in latency, authsvc vs boto3 straight to the same moto.
            log("sign-in: sequential latency and 8-client throughput")
            body = {"email": email, "password": PASSWORD}
            with httpx.Client(base_url=one.base, timeout=10) as http:
                direct, through, health = paired(
                    [
                        lambda: cognito.initiate_auth(email),
                        lambda: http.post("/v1/auth/sign-in", json=body),
                        lambda: http.get("/healthz"),
                    ],
                    n_seq,
                )
            d50, a50, h50 = (statistics.median(x) for x in (direct, through, health))
            added = a50 - d50 - h50
            rows.append(
                Row(
                    "4a",
                    "sign-in p50: authsvc ÷ boto3 initiate_auth",
                    f"{a50:.2f} ms vs {d50:.2f} ms",
                    a50 / d50,
                    "≤ 1.25",
                    a50 / d50 <= 1.25,
                )
            )
            rows.append(
                Row(
                    "4b",
                    "sign-in: authsvc's added time minus one /healthz",
                    f"{added:.3f} ms ({a50:.2f} − {d50:.2f} − {h50:.2f})",
                    of_bound(added, 0.3),
                    "≤ 0.3 ms",
                    added <= 0.3,
                )
            )
            measured["sign_in_sequential_ms"] = {
                "boto3": d50,
                "authsvc": a50,
                "healthz": h50,
                "authsvc_p99": pct(through, 0.99),
                "boto3_p99": pct(direct, 0.99),
            }

            # Row 5: 8 concurrent clients.
            def boto_client() -> Callable[[], bool]:
                client = cognito.boto()
                return lambda: "AuthenticationResult" in cognito.initiate_auth(email, client)

            def http_client() -> Callable[[], bool]:
                http = httpx.Client(base_url=one.base, timeout=10)
                return lambda: http.post("/v1/auth/sign-in", json=body).status_code == 200

            direct_loads, authsvc_loads = [], []
            for _ in range(1 if smoke else 2):
                direct_loads.append(threaded(boto_client, 8, seconds))
                authsvc_loads.append(threaded(http_client, 8, seconds))
            dr = statistics.median(x.rps for x in direct_loads)
            ar = statistics.median(x.rps for x in authsvc_loads)
            throughput["boto3 initiate_auth, 8 threads"] = dr
            throughput["authsvc sign-in, 8 clients"] = ar
            rows.append(
                Row(
                    "5",
                    "sign-in req/s, 8 clients: authsvc ÷ boto3 direct",
                    f"{ar:,.0f} vs {dr:,.0f} req/s",
                    ar / dr,
                    "≥ 0.90",
                    ar / dr >= 0.90,
                    f"failed calls: authsvc {sum(x.errors for x in authsvc_loads)},"
                    f" boto3 {sum(x.errors for x in direct_loads)}",
                )
            )

            # Rows 7 and 8: invitations in Postgres.
            small, large = invitations
            log(f"invitations: lookup at {small:,} rows, then at {large:,}")
            fill_invitations(database_url, 1, small)
            at_small = lookup_samples(one.base, small, n_tail)
            fill_s = fill_invitations(database_url, small + 1, large)
            at_large = lookup_samples(one.base, large, n_tail)
            p50_small, p50_large = statistics.median(at_small), statistics.median(at_large)
            p99_large = pct(at_large, 0.99)
            rows.append(
                Row(
                    "7a",
                    f"invitation lookup p99 at {large:,} rows (over HTTP)",
                    f"{p99_large:.2f} ms (p50 {p50_large:.2f} ms)",
                    of_bound(p99_large, 5.0),
                    "≤ 5 ms",
                    p99_large <= 5.0,
                )
            )
            rows.append(
                Row(
                    "7b",
                    f"invitation lookup p50 at {large:,} ÷ at {small:,}",
                    f"{p50_large:.2f} ms vs {p50_small:.2f} ms",
                    p50_large / p50_small,
                    "≤ 1.3",
                    p50_large / p50_small <= 1.3,
                )
            )
            cursor = deep_cursor(database_url, large // 2)
            admin = {"Authorization": f"Bearer {admin_token}"}
            with httpx.Client(base_url=one.base, timeout=10, headers=admin) as http:
                params = {"limit": 50, "cursor": cursor}
                page = http.get("/v1/invitations", params=params)
                assert page.status_code == 200 and len(page.json()["items"]) == 50, page.text
                pages = sample_ms(lambda: http.get("/v1/invitations", params=params), n_tail)
            p99_page = pct(pages, 0.99)
            rows.append(
                Row(
                    "8",
                    f"invitation list page of 50 at row {large // 2:,} (keyset) p99",
                    f"{p99_page:.2f} ms (p50 {statistics.median(pages):.2f} ms)",
                    of_bound(p99_page, 20.0),
                    "≤ 20 ms",
                    p99_page <= 20.0,
                )
            )
            measured["invitations"] = {
                "fill_seconds": fill_s,
                "lookup_p50_small_ms": p50_small,
                "lookup_p50_large_ms": p50_large,
                "lookup_p99_large_ms": p99_large,
                "page_p99_ms": p99_page,
            }

            # Row 9: memory of a fresh worker over 100k requests (mixed routes).
            # (The smoke run reuses the 1-worker instance instead of starting another.)
            log("memory: a fresh 1-worker instance under mixed requests")
            mem = one if smoke else start_serve(run, "serve-mem", env)
            ready(mem)
            script = run.tmp / "mixed.lua"
            script.write_text(
                'local paths = {"/healthz", "/v1/auth/session", "/v1/nope", "/v1/auth/session"}\n'
                "local i = 0\n"
                "request = function()\n"
                "  i = i + 1\n"
                f'  return wrk.format("GET", paths[(i % #paths) + 1], {{["Authorization"] = '
                f'"Bearer {token}"}})\n'
                "end\n"
            )
            served, marks = 0, {}
            for step in rss_steps:
                while served < step:
                    served += wrk(mem.base, 1 if smoke else 5, script=script).requests
                marks[step] = (served, rss_mb(mem.popen.pid))
            (_, m1), (n2, m2) = marks[rss_steps[0]], marks[rss_steps[1]]
            growth = (m2 - m1) / m1
            rows.append(
                Row(
                    "9a",
                    f"RSS of one worker after {rss_steps[1]:,} requests",
                    f"{m2:.1f} MB (after {n2:,})",
                    of_bound(m2, 150.0),
                    "≤ 150 MB",
                    m2 <= 150,
                )
            )
            rows.append(
                Row(
                    "9b",
                    f"RSS growth {rss_steps[0]:,} → {rss_steps[1]:,} requests",
                    f"{m1:.1f} → {m2:.1f} MB ({growth * 100:+.1f} %)",
                    of_bound(m2 / m1, 1.05),
                    "≤ 5 %",
                    growth <= 0.05,
                )
            )
            if mem is not one:
                mem.stop()
            measured["rss_mb"] = {str(k): v for k, v in marks.items()}

            s50, c50 = statistics.median(serve_times), statistics.median(serve_cpu)
            rows.append(
                Row(
                    "10a",
                    "`authsvc serve` start to ready (/readyz 200)",
                    f"{s50:.2f} s (median of {len(serve_times)})",
                    of_bound(s50, 1.5),
                    "≤ 1.5 s",
                    s50 <= 1.5,
                    f"CPU used until ready: {c50:.2f} s (the process's user + system time)",
                )
            )
            d50, dc50 = statistics.median(dev_times), statistics.median(dev_cpu)
            rows.append(
                Row(
                    "10b",
                    "`authsvc dev` start to ready (/readyz 200)",
                    f"{d50:.2f} s (median of {len(dev_times)})",
                    of_bound(d50, 5.0),
                    "≤ 5 s",
                    d50 <= 5.0,
                    f"CPU used until ready: {dc50:.2f} s (the emulator runs in the same process)",
                )
            )
            one.stop()

            # Row 11: scale-out.
            log("scale-out: 3 instances behind nginx, Postgres and Redis shared")
            if not smoke:
                scale, scale_missing = start_scale_instances(run, cognito, database_url)
            if scale_missing:
                rows.append(
                    Row(
                        "11",
                        "scale-out: 3 instances behind nginx",
                        "—",
                        None,
                        "holds",
                        False,
                        scale_missing,
                    )
                )
            else:
                scale_rows, scale_rps = scale_out(run, cognito, scale, seconds)
                rows.extend(scale_rows)
                throughput.update(scale_rps)
            measured["errors"] = errors
    finally:
        run.stop_all()

    rows.sort(key=lambda r: (int(re.match(r"\d+", r.key).group()), r.key))  # type: ignore[union-attr]
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    header = (
        f"authsvc bench{' (SMOKE: tiny durations, numbers meaningless)' if smoke else ''} —"
        f" {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {os.cpu_count()} cores ({cpu}),"
        f" load average {os.getloadavg()[0]:.1f} at the end; wrk -t2 -c32,"
        f" {rounds} × {seconds:.0f} s interleaved; took {time.perf_counter() - began:.0f} s"
    )
    table = print_table(rows, header)
    args.out.mkdir(parents=True, exist_ok=True)
    stem = "smoke" if smoke else "latest"
    document = {
        "header": header,
        "smoke": smoke,
        "rows": [{**r.__dict__, "verdict": r.verdict} for r in rows],
        "throughput_rps": throughput,
        "measured": measured,
        "table": table,
    }
    (args.out / f"{stem}.json").write_text(json.dumps(document, indent=2, default=str))
    chart(rows, throughput, args.out / f"{stem}.png", header)
    log(f"wrote {args.out / (stem + '.json')} and {stem}.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
