"""The authsvc command line: run the service, migrate its database, check its configuration,
create the first admin."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from authsvc.clihelp import (
    COMMAND_SETTINGS,
    DESCRIPTION,
    CommandParser,
    Formatter,
    describe_commands,
)

if TYPE_CHECKING:  # imported lazily at run time: `authsvc --help` stays fast
    from authsvc.state import AppState


def _config_error(exc: ValidationError) -> int:
    first = exc.errors()[0]
    loc = first.get("loc") or ()
    message = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    if loc:
        name = f"AUTHSVC_{str(loc[0]).upper()}"
    else:
        # A model-level check names the setting itself: "AUTHSVC_X is required".
        head, _, rest = message.partition(" ")
        name, message = (head, rest) if head.startswith("AUTHSVC_") else ("configuration", message)
    print(f"authsvc: configuration error: {name}: {message}", file=sys.stderr)
    return 2


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from authsvc import checks, logs, metrics

    if os.environ.get("AUTHSVC_DEV_MODE", "").strip().lower() not in {"", "0", "false", "no"}:
        print(
            "authsvc: AUTHSVC_DEV_MODE is ignored by `authsvc serve` (dev mode is `authsvc dev`)",
            file=sys.stderr,
        )
    # Every configuration problem at once (one line each), then each dependency, logged:
    # a dependency that is down does not stop start-up (/readyz holds traffic off instead).
    settings, problems, _ = checks.load_settings(dev_mode=False)
    if settings is None or problems:
        for problem in problems:
            print(f"authsvc: configuration error: {problem}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level, json_lines=True)
    startup = logging.getLogger("authsvc.startup")
    startup.info("check %s", checks.Result("configuration", True).line())
    for result in checks.dependency_checks(settings):
        startup.log(logging.INFO if result.ok else logging.WARNING, "check %s", result.line())
    workers = args.workers or settings.workers
    # uvicorn drains the requests in flight on SIGTERM, then raises the signal again: with
    # the default handler the process would die of it (status -15) after a clean shutdown.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        # Several workers: their metrics meet in one directory, which /metrics sums.
        with metrics.multiprocess_directory(workers) as metrics_dir:
            if metrics_dir:
                startup.info("metrics: %d workers share %s", workers, metrics_dir)
            uvicorn.run(
                "authsvc.main:create_app_from_env",
                factory=True,
                host=args.host,
                port=args.port,
                workers=workers,
                log_config=logs.uvicorn_log_config(),
                proxy_headers=False,
                server_header=False,
                access_log=False,  # authsvc logs each request itself, by route template
                timeout_graceful_shutdown=settings.shutdown_timeout_seconds,
            )
    except metrics.MetricsDirError as exc:
        print(f"authsvc: configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name other than localhost may resolve anywhere


def _dev(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    if not _is_loopback(args.host) and not args.unsafe_public:
        print(
            f"authsvc dev: refusing --host {args.host}: dev mode lists every code and reset"
            " link at /dev/outbox and signs tokens with a key published in moto's package,"
            " so it listens on loopback only. Pass --unsafe-public to expose it anyway.",
            file=sys.stderr,
        )
        return 2
    import uvicorn

    from authsvc import logs, migrate
    from authsvc.dev import runner
    from authsvc.dev.directory import DevDirectoryError
    from authsvc.main import create_app

    logs.configure(os.environ.get("AUTHSVC_LOG_LEVEL", "INFO"), json_lines=False)
    try:
        env = runner.start(host=args.host, port=args.port, data_dir=Path(args.data_dir))
    except ValidationError as exc:
        return _config_error(exc)
    except DevDirectoryError as exc:
        print(f"authsvc dev: {exc}", file=sys.stderr)
        return 2
    migrate.upgrade(env.settings.database_url)
    app = create_app(env.settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        log_config=logs.uvicorn_log_config(),
        # As in `serve`: X-Forwarded-For is believed only from AUTHSVC_TRUSTED_PROXIES
        # (uvicorn's own default would believe any client on 127.0.0.1).
        proxy_headers=False,
        server_header=False,
        access_log=False,
    )
    server = uvicorn.Server(config)
    print(
        runner.banner(
            env, args.host, args.port, started, unsafe_public=not _is_loopback(args.host)
        ),
        flush=True,
    )
    # uvicorn shuts down gracefully on SIGINT/SIGTERM, then re-raises the signal: without
    # these, Ctrl-C ends in a KeyboardInterrupt traceback and SIGTERM skips the clean-up.
    signal.signal(signal.SIGTERM, _exit_quietly)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    finally:
        env.emulator.stop()
    return 0


def _exit_quietly(_signum: int, _frame: object) -> None:
    raise SystemExit(0)


def _migrate(args: argparse.Namespace) -> int:
    from authsvc import migrate

    url = args.database_url or os.environ.get("AUTHSVC_DATABASE_URL")
    if not url:
        print("authsvc: configuration error: AUTHSVC_DATABASE_URL: is required", file=sys.stderr)
        return 2
    if args.downgrade:
        migrate.downgrade(url, args.downgrade)
    else:
        migrate.upgrade(url, args.revision)
    return 0


def _openapi(_args: argparse.Namespace) -> int:
    from authsvc.config import Settings
    from authsvc.main import create_app

    settings = Settings(
        cognito_user_pool_id="us-east-1_example",
        cognito_client_id="example",
        database_url="sqlite://",
        secret_key="openapi-document-only-key",
    )
    print(json.dumps(create_app(settings).openapi(), indent=2))
    return 0


def _state_from_env() -> AppState:
    from authsvc.config import serve_settings
    from authsvc.main import build_state

    return build_state(serve_settings())


def _reconcile(_args: argparse.Namespace) -> int:
    from authsvc import logs

    try:
        state = _state_from_env()
    except ValidationError as exc:
        return _config_error(exc)
    logs.configure(state.settings.log_level, json_lines=True)
    counts = state.invitations.reconcile()
    print(json.dumps(counts))
    return 0


def _deliver(_args: argparse.Namespace) -> int:
    from authsvc import logs

    try:
        state = _state_from_env()
    except ValidationError as exc:
        return _config_error(exc)
    logs.configure(state.settings.log_level, json_lines=True)
    sent = state.outbox_worker.run_once(limit=1000)
    print(json.dumps({"sent": sent}))
    return 0


def _check_config(_args: argparse.Namespace) -> int:
    from authsvc import checks

    _, ok = checks.run(lambda result: print(result.line(), flush=True), dev_mode=False)
    return 0 if ok else 1


def _create_admin(args: argparse.Namespace) -> int:
    from authsvc import checks
    from authsvc.admin.first_admin import CreateAdminError, create_admin

    # Only the pool's settings matter here: the app client and the secret key are not used.
    fixed: dict[str, Any] = {"dev_mode": False}
    if not os.environ.get("AUTHSVC_COGNITO_CLIENT_ID"):
        fixed["cognito_client_id"] = "unused-by-create-admin"
    settings, problems, _ = checks.load_settings(**fixed)
    needed = set(COMMAND_SETTINGS["create-admin"] or ())
    relevant = [
        p for p in problems if p.split(":", 1)[0].removeprefix("AUTHSVC_").lower() in needed
    ]
    if settings is None or relevant:
        for problem in relevant or problems:
            print(f"authsvc: configuration error: {problem}", file=sys.stderr)
        return 2
    try:
        created = create_admin(
            settings,
            args.email,
            given_name=args.given_name,
            family_name=args.family_name,
            print_password=args.print_password,
        )
    except CreateAdminError as exc:
        print(f"authsvc create-admin: {exc}", file=sys.stderr)
        return 1
    group = settings.admin_group
    if not created.created:
        print(
            f"{args.email} already exists (username {created.username}): password unchanged;"
            f" it is in the {group!r} group."
        )
    elif created.temporary_password:
        print(f"created {args.email} (username {created.username}) in the {group!r} group.")
        print(f"temporary password (shown once): {created.temporary_password}")
        print("Sign in with it: authsvc answers NEW_PASSWORD_REQUIRED; choose the real one.")
    else:
        print(
            f"created {args.email} (username {created.username}) in the {group!r} group;"
            " Cognito emailed a temporary password (it expires after the pool's"
            " TemporaryPasswordValidityDays)."
        )
    return 0


def _directory_sync(_args: argparse.Namespace) -> int:
    from authsvc import logs
    from authsvc.directory.service import DirectoryService

    try:
        state = _state_from_env()
    except ValidationError as exc:
        return _config_error(exc)
    logs.configure(state.settings.log_level, json_lines=True)
    if not state.settings.ldap_url:
        print("authsvc: configuration error: AUTHSVC_LDAP_URL: is required", file=sys.stderr)
        return 2
    service = DirectoryService(
        state.settings, state.gateway, state.pool, state.revocations, state.auth
    )
    counts = service.sync()
    print(json.dumps(counts))
    return 1 if counts["errors"] else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="authsvc",
        description=DESCRIPTION,
        epilog="Run authsvc COMMAND --help for a command's options and the settings it reads.",
        formatter_class=Formatter,
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=CommandParser
    )

    serve = sub.add_parser("serve", help="run with production settings from the environment")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on")
    serve.add_argument(
        "--workers", type=int, default=0, help="worker processes (0: AUTHSVC_WORKERS)"
    )
    serve.set_defaults(run=_serve)

    dev = sub.add_parser("dev", help="run with the embedded Cognito emulator and SQLite")
    dev.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    dev.add_argument("--port", type=int, default=8000, help="port to listen on")
    dev.add_argument("--data-dir", default=".authsvc", help="where the SQLite file and key live")
    dev.add_argument(
        "--unsafe-public",
        action="store_true",
        help="allow a non-loopback --host (anyone who can reach it reads every code)",
    )
    dev.set_defaults(run=_dev)

    mig = sub.add_parser("migrate", help="apply database migrations")
    mig.add_argument(
        "--database-url", default=None, help="SQLAlchemy URL (default: AUTHSVC_DATABASE_URL)"
    )
    mig.add_argument("--revision", default="head", help="upgrade to this Alembic revision")
    mig.add_argument(
        "--downgrade", default=None, metavar="REVISION", help="downgrade to REVISION instead"
    )
    mig.set_defaults(run=_migrate)

    rec = sub.add_parser("reconcile", help="repair invitations whose acceptance crashed (one pass)")
    rec.set_defaults(run=_reconcile)

    dlv = sub.add_parser("deliver", help="deliver queued emails (one pass)")
    dlv.set_defaults(run=_deliver)

    dsync = sub.add_parser(
        "directory-sync",
        help="disable and sign out directory users whose entries are gone or disabled (one pass)",
    )
    dsync.set_defaults(run=_directory_sync)

    api = sub.add_parser("openapi", help="print the OpenAPI document")
    api.set_defaults(run=_openapi)

    check = sub.add_parser(
        "check-config",
        help="report every configuration problem, then reach each dependency (one line each)",
    )
    check.set_defaults(run=_check_config)

    admin = sub.add_parser(
        "create-admin",
        help="create the first admin in the Cognito pool (or make an existing user admin)",
    )
    admin.add_argument("--email", required=True, help="the admin's email (the sign-in name)")
    admin.add_argument("--given-name", default=None, help="given_name attribute")
    admin.add_argument(
        "--family-name", default="Admin", help="family_name attribute (the pool requires one)"
    )
    admin.add_argument(
        "--print-password",
        action="store_true",
        help="print a temporary password once instead of letting Cognito email one",
    )
    admin.set_defaults(run=_create_admin)

    describe_commands(sub)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
