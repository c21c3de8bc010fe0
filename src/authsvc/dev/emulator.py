"""The embedded Cognito emulator behind `authsvc dev` and the tests.

moto's server mode runs on a loopback port inside this process, and the user pool, app
client and groups are created in it from `infra/template.yaml` with boto3: moto cannot
deploy Cognito resources from CloudFormation, and reading the template keeps it the single
source of truth for the pool's configuration.

moto keeps its state per process, not per server: every `EmbeddedCognito` started in one
process serves the same pools. `provision` is idempotent for that reason.
"""

from __future__ import annotations

import logging
import os
from types import TracebackType
from typing import Any, Self

import boto3

from authsvc.dev.provisioning import (
    CognitoIdpClient,
    ProvisionedPool,
    ensure_identity_pool,
    provision,
)
from authsvc.dev.template import (
    TemplateError,
    default_template_path,
    load_template,
)

# Importers reach the template and provisioning names through this module too.
__all__ = [
    "CognitoIdpClient",
    "EmbeddedCognito",
    "ProvisionedPool",
    "TemplateError",
    "default_template_path",
    "ensure_identity_pool",
    "file_tokens_under_the_username",
    "load_template",
    "provision",
]

# --------------------------------------------------------------------------- the server


def file_tokens_under_the_username() -> None:
    """Make moto file tokens the way Cognito does: under the user's actual username (and
    end them when their user is deleted).

    moto files a refresh token under whatever name signed in (the email, for a pool that
    signs in by email), so it checks REFRESH_TOKEN_AUTH's SECRET_HASH over that name, and
    GlobalSignOut by the actual username misses the token. Cognito hashes over the actual
    username (the access token's ``username``) and signs a user out whichever name is given
    (REFERENCE.md). Patched once per process; moto's state is per process too.
    """
    from moto.cognitoidp.models import CognitoIdpBackend, CognitoIdpUserPool

    global _tokens_patched
    if _tokens_patched:
        return
    delete_user = CognitoIdpBackend.admin_delete_user

    def admin_delete_user(backend: CognitoIdpBackend, user_pool_id: str, username: str) -> None:
        # Cognito's tokens die with their user; moto keeps them, and refreshing one then
        # crashes (HTTP 500) instead of answering NotAuthorizedException.
        user = backend.admin_get_user(user_pool_id, username)
        backend.describe_user_pool(user_pool_id).sign_out(user.username)
        delete_user(backend, user_pool_id, username)

    create_refresh = CognitoIdpUserPool.create_refresh_token
    create_access = CognitoIdpUserPool.create_access_token
    sign_out = CognitoIdpUserPool.sign_out

    def actual(pool: CognitoIdpUserPool, name: str) -> str:
        user = pool._get_user(name)
        return str(user.username) if user is not None else name

    def create_refresh_token(
        pool: CognitoIdpUserPool, client_id: str, username: str
    ) -> tuple[str, str]:
        return create_refresh(pool, client_id, actual(pool, username))

    def create_access_token(
        pool: CognitoIdpUserPool, client_id: str, username: str, origin_jti: str
    ) -> tuple[str, int]:
        return create_access(pool, client_id, actual(pool, username), origin_jti)

    def sign_out_user(pool: CognitoIdpUserPool, username: str) -> None:
        sign_out(pool, actual(pool, username))
        if actual(pool, username) != username:
            sign_out(pool, username)  # tokens filed before the patch, under the alias

    # Patching moto's classes is the point here (moto is pinned: pyproject.toml); mypy
    # reads a function assigned to a class as taking self twice (assignment).
    CognitoIdpUserPool.create_refresh_token = create_refresh_token  # type: ignore[method-assign,assignment]
    CognitoIdpUserPool.create_access_token = create_access_token  # type: ignore[method-assign,assignment]
    CognitoIdpUserPool.sign_out = sign_out_user  # type: ignore[method-assign,assignment]
    CognitoIdpBackend.admin_delete_user = admin_delete_user  # type: ignore[method-assign,assignment]
    _tokens_patched = True


_tokens_patched = False  # moto's state is per process, and so is the patch


class EmbeddedCognito:
    """moto's Cognito in server mode, on a loopback port of this process."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, region: str = "us-east-1") -> None:
        self.host = host
        self.port = port
        self.region = region
        self._server: Any = None
        self._endpoint_url: str | None = None

    @property
    def endpoint_url(self) -> str:
        if self._endpoint_url is None:
            raise RuntimeError("EmbeddedCognito is not started")
        return self._endpoint_url

    def start(self) -> str:
        """Start the server (port 0 picks a free one) and return its endpoint URL."""
        if self._endpoint_url is not None:
            return self._endpoint_url
        # Stable pool and client ids: derived from the name and configuration.
        os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_ID_STRATEGY", "HASH")
        os.environ.setdefault("MOTO_COGNITO_IDP_USER_POOL_CLIENT_ID_STRATEGY", "HASH")
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        from moto.server import ThreadedMotoServer  # heavy import, only when used

        file_tokens_under_the_username()
        server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.port = port
        url_host = f"[{host}]" if ":" in host else host
        self._endpoint_url = f"http://{url_host}:{port}"
        return self._endpoint_url

    def client(self) -> CognitoIdpClient:
        """A boto3 cognito-idp client for the emulator (dummy credentials)."""
        return boto3.client(
            "cognito-idp",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self._server = None
        self._endpoint_url = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
