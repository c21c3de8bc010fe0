"""docker-compose's `local` profile: provision a moto server container from the template.

The production image has no moto, so compose runs moto in its own container and this
one-shot step (``python -m authsvc.dev.compose``, the ``cognito-setup`` service) creates the
pool, app client and groups in it from ``infra/template.yaml``, seeds an admin, and writes the
settings authsvc needs to an env file that the ``authsvc`` service reads at start.

Unlike `authsvc dev`, authsvc then runs as in production (`serve`) against plain moto, with
moto's gaps (REFERENCE.md): e.g. moto accepts any sign-up confirmation code.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

from authsvc.dev.emulator import default_template_path, load_template, provision
from authsvc.dev.runner import generate_password, seed_admin


def _client(endpoint_url: str, region: str) -> Any:
    return boto3.client(
        "cognito-idp",
        endpoint_url=endpoint_url,
        region_name=region,
        # moto accepts any credentials; real ones are never sent to an emulator.
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def _wait(client: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            client.list_user_pools(MaxResults=1)
            return
        except (BotoCoreError, ClientError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def env_lines(values: dict[str, str]) -> str:
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in values.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m authsvc.dev.compose",
        description="Provision a Cognito emulator (moto) from infra/template.yaml for compose.",
    )
    parser.add_argument(
        "--endpoint-url", required=True, help="the moto server, e.g. http://moto:5000"
    )
    parser.add_argument("--env-file", required=True, type=Path, help="where to write the settings")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--template", type=Path, default=None, help="default: infra/template.yaml")
    parser.add_argument(
        "--admin-email",
        default=os.environ.get("AUTHSVC_LOCAL_ADMIN_EMAIL", "admin@example.com"),
        help="seeded admin (env AUTHSVC_LOCAL_ADMIN_EMAIL)",
    )
    parser.add_argument("--wait", type=float, default=60.0, help="seconds to wait for moto")
    args = parser.parse_args(argv)

    client = _client(args.endpoint_url, args.region)
    _wait(client, args.wait)
    pool = provision(client, load_template(args.template or default_template_path()))
    password = os.environ.get("AUTHSVC_LOCAL_ADMIN_PASSWORD") or generate_password()
    seed_admin(client, pool, args.admin_email, password)

    values = {
        "AUTHSVC_COGNITO_ENDPOINT_URL": args.endpoint_url,
        "AUTHSVC_COGNITO_REGION": pool.region,
        "AUTHSVC_COGNITO_USER_POOL_ID": pool.user_pool_id,
        "AUTHSVC_COGNITO_CLIENT_ID": pool.client_id,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    if pool.client_secret:
        values["AUTHSVC_COGNITO_CLIENT_SECRET"] = pool.client_secret
    args.env_file.parent.mkdir(parents=True, exist_ok=True)
    args.env_file.write_text(env_lines(values), encoding="utf-8")
    args.env_file.chmod(0o644)  # read by the authsvc container's unprivileged user
    print(
        f"cognito-setup: pool {pool.user_pool_id}, client {pool.client_id}; "
        f"admin {args.admin_email} / {password} (moto: local only)",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
