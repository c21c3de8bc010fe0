"""AWS Lambda entry point: the same app behind API Gateway (Mangum), for users who prefer
serverless (`infra/template.yaml` with `LambdaCodeS3Bucket`; README, "Serverless").

Handler: ``authsvc.lambda_handler.handler``. Needs the ``lambda`` extra (``mangum``).

A function is frozen between invocations, so what `authsvc serve` does in the background is
done here at the edges of each invocation instead:

- the app's lifespan (JWKS prefetch, revocation poller, audit writer, outbox worker, ...)
  is entered once per execution environment, at cold start, and never left;
- before a request, revocations are re-read from the database when the last read is older
  than the poll interval, so a sign-out on another instance is honoured after a thaw too;
- after a request, buffered audit rows are written, so a reaped environment loses none;
- a scheduled event (EventBridge, every minute in the template) delivers queued emails,
  repairs stuck invitations and retries pending Cognito sign-outs;
- a command event, ``{"command": ["create-admin", "--email", "..."]}``, runs one of the
  one-off CLI commands (``aws lambda invoke``; only IAM principals allowed to invoke the
  function can send one, API Gateway events never have this shape).

At cold start the database is migrated to Alembic's head first (concurrent cold starts take
turns on a Postgres advisory lock), as each ECS task does before `serve`.

Secrets: for every ``AUTHSVC_X_SECRET_ARN`` in the environment, ``AUTHSVC_X`` is read from
Secrets Manager at cold start (Lambda cannot inject secrets into the environment the way
ECS does).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import os
import sys
import time
from collections.abc import MutableMapping
from contextlib import AbstractAsyncContextManager
from typing import Any

from fastapi import FastAPI
from pydantic import ValidationError

from authsvc.config import Settings
from authsvc.main import create_app
from authsvc.state import AppState

log = logging.getLogger("authsvc.lambda")

SECRET_ARN_SUFFIX = "_SECRET_ARN"


def resolve_secrets(environ: MutableMapping[str, str], client: Any = None) -> list[str]:
    """Set ``AUTHSVC_X`` from the secret named by ``AUTHSVC_X_SECRET_ARN`` (unless ``AUTHSVC_X``
    is already set). Returns the names that were set. ``client``: a boto3 secretsmanager
    client (default: one for the function's region)."""
    resolved: list[str] = []
    for key in sorted(environ):
        if not (key.startswith("AUTHSVC_") and key.endswith(SECRET_ARN_SUFFIX)):
            continue
        target = key.removesuffix(SECRET_ARN_SUFFIX)
        if not environ[key] or environ.get(target):
            continue
        if client is None:
            import boto3

            client = boto3.client("secretsmanager")
        environ[target] = client.get_secret_value(SecretId=environ[key])["SecretString"]
        resolved.append(target)
    return resolved


def is_scheduled_event(event: Any) -> bool:
    return isinstance(event, dict) and event.get("source") == "aws.events"


# One-off commands a command event may run; never the servers.
COMMANDS = frozenset({"migrate", "create-admin", "check-config", "reconcile", "deliver"})


def is_command_event(event: Any) -> bool:
    return isinstance(event, dict) and "command" in event and "requestContext" not in event


def run_command(argv: Any) -> dict[str, Any]:
    """Run ``authsvc <argv>`` in this environment; its exit code and output."""
    if (
        not isinstance(argv, list)
        or not argv
        or not all(isinstance(a, str) for a in argv)
        or argv[0] not in COMMANDS
    ):
        allowed = ", ".join(sorted(COMMANDS))
        return {"exit_code": 2, "output": f"command must be a list starting with one of: {allowed}"}
    from authsvc.cli import main

    output = io.StringIO()
    with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: --help, bad arguments
            code = exc.code if isinstance(exc.code, int) else 1
    return {"exit_code": code, "output": output.getvalue()}


class LambdaApp:
    """One per execution environment: the app, its lifespan entered once, Mangum in front."""

    def __init__(self, app: FastAPI) -> None:
        from mangum import Mangum

        self.app = app
        self.state: AppState = app.state.authsvc
        # One loop for the environment's life: the lifespan and Mangum's requests share it.
        self._loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self._loop)
        self._lifespan: AbstractAsyncContextManager[Any] = app.router.lifespan_context(app)
        self._loop.run_until_complete(self._lifespan.__aenter__())
        self._last_sync = time.monotonic()
        self._asgi = Mangum(app, lifespan="off")

    def __call__(self, event: Any, context: Any) -> Any:
        if is_scheduled_event(event):
            return self.maintain()
        if is_command_event(event):
            return run_command(event["command"])
        revocations = self.state.revocations
        if time.monotonic() - self._last_sync >= revocations.poll_interval:
            revocations.sync()
            self._last_sync = time.monotonic()
        try:
            return self._asgi(event, context)
        finally:
            if self.state.audit.pending():
                self.state.audit.flush()

    def maintain(self) -> dict[str, int]:
        """The scheduled pass: what `serve`'s background loops do between requests."""
        state = self.state
        result: dict[str, int] = {}
        steps: list[tuple[str, Any]] = [
            ("sent", lambda: state.outbox_worker.run_once(limit=1000)),
            ("reconcile", state.invitations.reconcile),
            ("sign_outs", state.auth.retry_pending_sign_outs),
            ("audit_written", state.audit.flush),
        ]
        for name, step in steps:
            try:
                value = step()
            except Exception:  # one failing step must not stop the others
                log.exception("maintenance step %s failed", name)
                continue
            if isinstance(value, dict):
                result.update({f"{name}_{k}": v for k, v in value.items()})
            else:
                result[name] = int(value)
        return result

    def close(self) -> None:
        """Leave the lifespan (tests; a real environment is simply reaped)."""
        try:
            self._loop.run_until_complete(self._lifespan.__aexit__(None, None, None))
        finally:
            asyncio.set_event_loop(None)
            self._loop.close()


def build(settings: Settings | None = None) -> LambdaApp:
    from authsvc import logs

    resolve_secrets(os.environ)
    try:
        settings = settings or Settings()
    except ValidationError as exc:
        from authsvc.cli import _config_error

        _config_error(exc)  # one line naming the setting, in the function's log
        raise SystemExit(2) from None
    logs.configure(settings.log_level, json_lines=True)
    if os.environ.get("AUTHSVC_LAMBDA_MIGRATE", "true").lower() != "false":
        from authsvc import migrate

        migrate.upgrade(settings.database_url)
    return LambdaApp(create_app(settings))


_instance: LambdaApp | None = None


def handler(event: Any, context: Any) -> Any:
    global _instance
    if _instance is None:
        _instance = build()
    return _instance(event, context)


# In Lambda, build during the init phase (before the first request is timed).
if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and "pytest" not in sys.modules:
    _instance = build()
