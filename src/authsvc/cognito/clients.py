"""boto3 clients: Cognito's, configured from the settings, and any other from one session."""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

from authsvc.config import Settings


def make_client(settings: Settings, *, max_attempts: int | None = None) -> Any:
    # botocore's "max_attempts" counts retries after the first request (3 would send 4, and
    # 1 would resend a non-idempotent call once, blindly); "total_max_attempts" counts them all.
    attempts = max_attempts or settings.cognito_max_attempts
    config = Config(
        region_name=settings.cognito_region,
        retries={"mode": "standard", "total_max_attempts": attempts},
        connect_timeout=settings.cognito_connect_timeout,
        read_timeout=settings.cognito_read_timeout,
        max_pool_connections=50,
    )
    kwargs: dict[str, Any] = {"config": config}
    if settings.cognito_endpoint_url:
        kwargs["endpoint_url"] = settings.cognito_endpoint_url
    if settings.dev_mode:
        # The embedded emulator takes any credentials; a laptop may have none.
        kwargs.update(aws_access_key_id="testing", aws_secret_access_key="testing")  # noqa: S106
    return new_client("cognito-idp", **kwargs)


_session: boto3.session.Session | None = None
_session_lock = threading.Lock()


def new_client(service: str, **kwargs: Any) -> Any:
    """A boto3 client from one shared session: the service model is read from disk once,
    not once per client (that is most of a client's creation time). Clients themselves are
    thread-safe; creating them from one session is serialised here because sessions are not."""
    global _session
    with _session_lock:
        if _session is None:
            _session = boto3.session.Session()
        # boto3-stubs overload client() per literal service name; here it is a parameter.
        return _session.client(service, **kwargs)  # type: ignore[call-overload]
