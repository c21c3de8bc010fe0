"""No secret in any log line (DESIGN §2), against a real `authsvc serve` at DEBUG level.

Every flow runs against one `authsvc serve` subprocess (production settings: JSON logs,
the real Cognito gateway against the emulator, Postgres, SMTP email): sign-up, confirm,
resend, sign-in (ok, wrong password, unknown user, refresh token in a cookie), the
NEW_PASSWORD_REQUIRED challenge, refresh (body and cookie), session, profile read and
update, password change, forgot/reset, TOTP set-up and the SOFTWARE_TOKEN_MFA challenge,
sign-out, invitations (create, list, read, lookup, accept, resend, revoke) and every admin
route; plus requests that put a secret where it does not belong (a token in a URL path, a
password in a body that is not JSON).

Then everything the process wrote (stdout and stderr) is scanned: no password, code, access
or ID token, refresh token, challenge session, invitation token or link, TOTP secret or
temporary password appears, and no JWT-looking string at all. Every line is a JSON object;
each request has one access line (request id, method, route *template*, status, duration);
Cognito calls are logged with their operation and outcome.

Serve mode is not dev mode: there is no dev outbox, so codes come the honest way — moto
accepts any sign-up confirmation code (REFERENCE.md), the reset code is the one moto hands
out in its ``x-moto-forgot-password-confirmation-code`` header, and invitation links arrive
by SMTP at a local sink, as they would in a real deployment.
"""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller

from authsvc import migrate
from authsvc.config import Settings
from authsvc.main import create_app
from tests.conftest import Emulator, create_database, drop_database
from tests.helpers import new_email
from tests.mfa.support import current_code, wait_for_fresh_step

pytestmark = pytest.mark.slow

AUTHSVC = Path(sys.executable).with_name("authsvc")
SECRET_KEY = "logs-test-secret-key-" + "0123456789abcdef"
APP_URL = "http://app.example.test"
COOKIE = "__Host-authsvc_refresh"
JWT = re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.")
BEARER = re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]{10,}")
# The invitation saga's temporary password: secrets.token_urlsafe(24) + "Aa1!".
SAGA_TEMPORARY_PASSWORD = re.compile(r"[A-Za-z0-9_-]{32}Aa1!")


def _password(tag: str) -> str:
    """A unique, policy-compliant password (so finding it in a log is unambiguous)."""
    return f"{tag}-Pw0rd-{secrets.token_hex(6)}!"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --------------------------------------------------------------------------- the SMTP sink


class _Sink:
    """An SMTP server's handler that keeps every message (the invitation emails)."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        return "250 OK"

    def invitation_links(self, to: str) -> list[str]:
        with self.lock:
            found = []
            for message in self.messages:
                if message["To"] == to:
                    body = message.get_body(preferencelist=("plain",))
                    text = body.get_content() if body is not None else ""
                    found += re.findall(r"https?://\S+#token=[A-Za-z0-9_-]+", text)
            return found

    def wait_link(self, to: str, exclude: set[str], timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            fresh = [link for link in self.invitation_links(to) if link not in exclude]
            if fresh:
                return fresh[-1]
            time.sleep(0.05)
        raise AssertionError(f"no invitation email for {to} within {timeout}s")


# --------------------------------------------------------------------------- the server


@dataclass
class Serve:
    base_url: str
    process: subprocess.Popen[bytes]
    log: Path
    smtp: _Sink

    def text(self) -> str:
        return self.log.read_text(errors="replace")


def _env(cognito: Emulator, database_url: str, smtp_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUTHSVC_", "AWS_"))}
    env.update(
        {
            "AUTHSVC_COGNITO_REGION": cognito.pool.region,
            "AUTHSVC_COGNITO_USER_POOL_ID": cognito.pool.user_pool_id,
            "AUTHSVC_COGNITO_CLIENT_ID": cognito.pool.client_id,
            "AUTHSVC_COGNITO_ENDPOINT_URL": cognito.endpoint_url,
            "AUTHSVC_DATABASE_URL": database_url,
            "AUTHSVC_SECRET_KEY": SECRET_KEY,
            "AUTHSVC_LOG_LEVEL": "DEBUG",
            "AUTHSVC_PUBLIC_APP_URL": APP_URL,
            "AUTHSVC_CORS_ORIGINS": APP_URL,
            "AUTHSVC_EMAIL_BACKEND": "smtp",
            "AUTHSVC_SMTP_HOST": "127.0.0.1",
            "AUTHSVC_SMTP_PORT": str(smtp_port),
            "AUTHSVC_SMTP_STARTTLS": "false",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": cognito.pool.region,
            "PYTHONUNBUFFERED": "1",
        }
    )
    if cognito.pool.client_secret:
        env["AUTHSVC_COGNITO_CLIENT_SECRET"] = cognito.pool.client_secret
    return env


@pytest.fixture(scope="module")
def serve(
    cognito: Emulator, postgres_server: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Serve]:
    database_url = create_database(postgres_server, prefix="authsvc_logs")
    migrate.upgrade(database_url)
    sink = _Sink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    port = _free_port()
    log = tmp_path_factory.mktemp("logs") / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(AUTHSVC), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=_env(cognito, database_url, controller.port),
            cwd=log.parent,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    server = Serve(f"http://127.0.0.1:{port}", process, log, sink)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"authsvc serve exited: {server.text()[-3000:]}"
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"not ready in 60 s: {server.text()[-3000:]}"
            time.sleep(0.05)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        controller.stop()
        drop_database(postgres_server, database_url)


# --------------------------------------------------------------------------- the flows


@dataclass
class Run:
    """What the flows sent and got: the secrets to look for, and every response's id."""

    http: httpx.Client
    secrets: dict[str, str] = field(default_factory=dict)
    # (request id, method, status) of every response
    requests: list[tuple[str, str, int]] = field(default_factory=list)

    def secret(self, name: str, value: str | None) -> str:
        assert value, f"no value for {name}"
        self.secrets[f"{name} #{len(self.secrets)}"] = value
        return value

    def call(
        self, method: str, path: str, expect: int | tuple[int, ...], **kwargs: Any
    ) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        allowed = expect if isinstance(expect, tuple) else (expect,)
        assert response.status_code in allowed, (method, path, response.status_code, response.text)
        self.requests.append((response.headers["x-request-id"], method, response.status_code))
        return response

    def tokens(self, response: httpx.Response, name: str) -> dict[str, Any]:
        body: dict[str, Any] = response.json()
        assert body.get("kind", "tokens") == "tokens", body
        self.secret(f"{name} access token", body["access_token"])
        self.secret(f"{name} id token", body["id_token"])
        if body.get("refresh_token"):
            self.secret(f"{name} refresh token", body["refresh_token"])
        return body


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _direct_user(cognito: Emulator, email_address: str, password: str, *groups: str) -> None:
    """A confirmed user made at the emulator (the administrator needs no sign-up flow)."""
    pool = cognito.pool.user_pool_id
    cognito.client.admin_create_user(
        UserPoolId=pool,
        Username=email_address,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": email_address},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Logs"},
        ],
    )
    cognito.client.admin_set_user_password(
        UserPoolId=pool, Username=email_address, Password=password, Permanent=True
    )
    for group in groups:
        cognito.client.admin_add_user_to_group(
            UserPoolId=pool, Username=email_address, GroupName=group
        )


def _self_service(run: Run, cognito: Emulator) -> None:
    # sign-up, twice (the second for an existing account), confirm, resend
    user = new_email("logs-user")
    password = run.secret("sign-up password", _password("SignUp"))
    body = {"email": user, "password": password, "given_name": "Ada", "family_name": "Logs"}
    run.call("POST", "/v1/auth/sign-up", 202, json=body)
    code = run.secret("sign-up code", "739164")  # moto takes any confirmation code
    run.call("POST", "/v1/auth/sign-up/confirm", 204, json={"email": user, "code": code})
    # Again once confirmed (twice before confirmation would make the address contested).
    run.call("POST", "/v1/auth/sign-up", 202, json=body)
    wrong = run.secret("wrong code", "592038")
    run.call("POST", "/v1/auth/sign-up/confirm", 400, json={"email": new_email(), "code": wrong})
    # moto does not implement ResendConfirmationCode (REFERENCE.md): its 500 page is an outage
    # there (503), 202 against Cognito. Either way the call and its outcome are logged.
    run.call("POST", "/v1/auth/sign-up/resend", (202, 503), json={"email": user})

    # sign-in: ok, wrong password, unknown user
    tokens = run.tokens(
        run.call("POST", "/v1/auth/sign-in", 200, json={"email": user, "password": password}),
        "sign-in",
    )
    wrong_password = run.secret("wrong password", _password("Wrong"))
    run.call("POST", "/v1/auth/sign-in", 401, json={"email": user, "password": wrong_password})
    run.call(
        "POST", "/v1/auth/sign-in", 401, json={"email": new_email(), "password": wrong_password}
    )

    # refresh (body), session, profile
    run.tokens(
        run.call("POST", "/v1/auth/refresh", 200, json={"refresh_token": tokens["refresh_token"]}),
        "refresh",
    )
    access = tokens["access_token"]
    run.call("GET", "/v1/auth/session", 200, headers=bearer(access))
    run.call("GET", "/v1/me", 200, headers=bearer(access))
    run.call("PATCH", "/v1/me", 200, json={"given_name": "Grace"}, headers=bearer(access))

    # the refresh token in a cookie (SPA transport): sign-in, then refresh from the cookie
    cookie_sign_in = run.call(
        "POST",
        "/v1/auth/sign-in",
        200,
        json={"email": user, "password": password},
        headers={"X-Token-Transport": "cookie"},
    )
    run.tokens(cookie_sign_in, "cookie sign-in")
    set_cookie = cookie_sign_in.headers.get("set-cookie", "")
    assert set_cookie.startswith(f"{COOKIE}="), set_cookie
    cookie = run.secret("refresh cookie", set_cookie.split(";", 1)[0].split("=", 1)[1])
    refreshed = run.call(
        "POST",
        "/v1/auth/refresh",
        200,
        headers={
            "Cookie": f"{COOKIE}={cookie}",
            "X-CSRF": "1",
            "Origin": APP_URL,
            "X-Token-Transport": "cookie",
        },
    )
    run.tokens(refreshed, "cookie refresh")

    # password change, then sign in with the new password
    new_password = run.secret("changed password", _password("Changed"))
    run.call(
        "POST",
        "/v1/me/password",
        204,
        json={"current_password": password, "new_password": new_password},
        headers=bearer(access),
    )
    run.call(
        "POST",
        "/v1/me/password",
        401,  # the change signed every session out, this one included
        json={"current_password": new_password, "new_password": password},
        headers=bearer(access),
    )
    tokens = run.tokens(
        run.call("POST", "/v1/auth/sign-in", 200, json={"email": user, "password": new_password}),
        "sign-in after change",
    )

    # forgot / reset with the code moto hands out
    run.call("POST", "/v1/auth/password/forgot", 202, json={"email": user})
    run.call("POST", "/v1/auth/password/forgot", 202, json={"email": new_email()})
    upstream = cognito.client.forgot_password(ClientId=cognito.pool.client_id, Username=user)
    moto_code = run.secret(
        "moto reset code",
        upstream["ResponseMetadata"]["HTTPHeaders"]["x-moto-forgot-password-confirmation-code"],
    )
    reset_code = run.secret("reset code", moto_code.rsplit(":", 1)[-1])
    reset_password = run.secret("reset password", _password("Reset"))
    run.call(
        "POST",
        "/v1/auth/password/reset",
        204,
        json={"email": user, "code": reset_code, "new_password": reset_password},
    )
    tokens = run.tokens(
        run.call("POST", "/v1/auth/sign-in", 200, json={"email": user, "password": reset_password}),
        "sign-in after reset",
    )

    # TOTP: set up, verify, sign in through the SOFTWARE_TOKEN_MFA challenge, turn off
    access = tokens["access_token"]
    setup = run.call("POST", "/v1/me/mfa/totp", 200, headers=bearer(access)).json()
    secret = run.secret("totp secret", setup["secret_code"])
    run.secret("otpauth uri", setup["otpauth_uri"])
    code = run.secret("totp code", current_code(secret))
    run.call("POST", "/v1/me/mfa/totp/verify", 204, json={"code": code}, headers=bearer(access))
    challenge = run.call(
        "POST", "/v1/auth/sign-in", 200, json={"email": user, "password": reset_password}
    ).json()
    assert challenge["kind"] == "challenge" and challenge["challenge"] == "SOFTWARE_TOKEN_MFA"
    session = run.secret("mfa session", challenge["session"])
    wait_for_fresh_step()
    code = run.secret("totp sign-in code", current_code(secret))
    answer = {"challenge": "SOFTWARE_TOKEN_MFA", "session": session, "email": user, "code": code}
    tokens = run.tokens(run.call("POST", "/v1/auth/challenge", 200, json=answer), "mfa")
    run.call("DELETE", "/v1/me/mfa/totp", 204, headers=bearer(tokens["access_token"]))
    # Turning TOTP off ended every session (issue 11): sign in again, without a code now.
    tokens = run.tokens(
        run.call("POST", "/v1/auth/sign-in", 200, json={"email": user, "password": reset_password}),
        "sign-in after mfa off",
    )

    # sign-out; the token is refused afterwards
    run.call("POST", "/v1/auth/sign-out", 204, headers=bearer(tokens["access_token"]))
    run.call("GET", "/v1/me", 401, headers=bearer(tokens["access_token"]))

    # NEW_PASSWORD_REQUIRED for a user an administrator created
    forced = new_email("logs-forced")
    temporary = run.secret("temporary password", _password("Temp"))
    cognito.client.admin_create_user(
        UserPoolId=cognito.pool.user_pool_id,
        Username=forced,
        TemporaryPassword=temporary,
        MessageAction="SUPPRESS",
        UserAttributes=[
            {"Name": "email", "Value": forced},
            {"Name": "email_verified", "Value": "true"},
            {"Name": "family_name", "Value": "Forced"},
        ],
    )
    challenge = run.call(
        "POST", "/v1/auth/sign-in", 200, json={"email": forced, "password": temporary}
    ).json()
    assert challenge["challenge"] == "NEW_PASSWORD_REQUIRED", challenge
    session = run.secret("new-password session", challenge["session"])
    chosen = run.secret("chosen password", _password("Chosen"))
    answer = {
        "challenge": "NEW_PASSWORD_REQUIRED",
        "session": session,
        "email": forced,
        "new_password": chosen,
    }
    run.tokens(run.call("POST", "/v1/auth/challenge", 200, json=answer), "new password")
    forged = run.secret("forged session", "forged-" + secrets.token_urlsafe(24))
    # A session authsvc did not seal never reaches Cognito: 400 invalid_session.
    run.call("POST", "/v1/auth/challenge", 400, json={**answer, "session": forged})


def _invitations_and_admin(run: Run, cognito: Emulator, smtp: _Sink) -> None:
    admin_email = new_email("logs-admin")
    admin_password = run.secret("admin password", _password("Admin"))
    _direct_user(cognito, admin_email, admin_password, "admin")
    admin = run.tokens(
        run.call(
            "POST", "/v1/auth/sign-in", 200, json={"email": admin_email, "password": admin_password}
        ),
        "admin",
    )
    auth = bearer(admin["access_token"])

    # create, list, read, look up and accept an invitation (the link arrives by SMTP)
    invitee = new_email("logs-invitee")
    invitation = run.call(
        "POST",
        "/v1/invitations",
        201,
        json={"email": invitee, "given_name": "Inv", "family_name": "Itee", "groups": []},
        headers=auth,
    ).json()
    link = run.secret("invitation link", smtp.wait_link(invitee, set()))
    token = run.secret("invitation token", link.rsplit("#token=", 1)[1])
    run.call("GET", "/v1/invitations", 200, params={"status": "pending"}, headers=auth)
    run.call("GET", f"/v1/invitations/{invitation['id']}", 200, headers=auth)
    run.call("POST", "/v1/invitations/lookup", 200, json={"token": token})
    accepted_password = run.secret("accept password", _password("Accept"))
    accepted = run.tokens(
        run.call(
            "POST",
            "/v1/invitations/accept",
            201,
            json={"token": token, "password": accepted_password},
        ),
        "invitation accept",
    )
    run.call("POST", "/v1/invitations/lookup", 400, json={"token": token})  # single use
    # a secret where it does not belong: a token in the path (no route: never logged)
    run.call("GET", f"/v1/invitations/{token}", 404, headers=auth)

    # a second invitation: resend (a new link; the old one dies), then revoke
    second = new_email("logs-second")
    other = run.call(
        "POST", "/v1/invitations", 201, json={"email": second, "family_name": "Two"}, headers=auth
    ).json()
    first_link = run.secret("second invitation link", smtp.wait_link(second, set()))
    run.secret("second invitation token", first_link.rsplit("#token=", 1)[1])
    run.call("POST", f"/v1/invitations/{other['id']}/resend", 202, headers=auth)
    resent = run.secret("resent invitation link", smtp.wait_link(second, {first_link}))
    run.secret("resent invitation token", resent.rsplit("#token=", 1)[1])
    run.call("DELETE", f"/v1/invitations/{other['id']}", 204, headers=auth)

    # every admin route, on the user the invitation created
    me = run.call("GET", "/v1/me", 200, headers=bearer(accepted["access_token"])).json()
    username = me["username"]
    users = "/v1/admin/users"
    run.call("GET", users, 200, params={"email_prefix": invitee[:12]}, headers=auth)
    run.call("GET", users, 200, params={"status": "CONFIRMED", "limit": 5}, headers=auth)
    run.call("GET", f"{users}/{username}", 200, headers=auth)
    run.call("GET", f"{users}/no-such-user-{uuid.uuid4().hex[:6]}", 404, headers=auth)
    run.call(
        "PATCH",
        f"{users}/{username}",
        200,
        json={"given_name": "Renamed", "email_verified": True},
        headers=auth,
    )
    admin_temporary = run.secret("admin-set temporary password", _password("AdminTemp"))
    run.call(
        "POST",
        f"{users}/{username}/password",
        204,
        json={"password": admin_temporary, "permanent": False},
        headers=auth,
    )
    admin_set = run.secret("admin-set password", _password("AdminSet"))
    run.call(
        "POST",
        f"{users}/{username}/password",
        204,
        json={"password": admin_set, "permanent": True},
        headers=auth,
    )
    run.call("PUT", f"{users}/{username}/groups/admin", 204, headers=auth)
    run.call("DELETE", f"{users}/{username}/groups/admin", 204, headers=auth)
    run.call("DELETE", f"{users}/{username}/mfa", 204, headers=auth)
    run.call("POST", f"{users}/{username}/sign-out", 204, headers=auth)
    run.call("POST", f"{users}/{username}/disable", 204, headers=auth)
    run.call("POST", "/v1/auth/sign-in", 401, json={"email": invitee, "password": admin_set})
    run.call("POST", f"{users}/{username}/enable", 204, headers=auth)
    run.call("DELETE", f"{users}/{username}", 204, headers=auth)
    run.call("GET", "/v1/admin/audit-events", 200, params={"limit": 100}, headers=auth)

    # refused requests that carry secrets: a password in a body that is not JSON, a token
    # in the query string, a password in a body that fails validation
    run.call(
        "POST",
        "/v1/auth/sign-in",
        415,
        content=f"email={admin_email}&password={admin_password}".encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    run.call("GET", "/v1/auth/session", 200, params={"access_token": token}, headers=auth)
    run.call(
        "POST", "/v1/auth/sign-in", 422, json={"email": "not-an-email", "password": admin_password}
    )
    run.call("GET", "/v1/me", 401, headers=bearer(run.secret("forged jwt", _forged_jwt())))


def _forged_jwt() -> str:
    import base64

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'kid': 'dummy'})}.{part({'sub': 'x'})}.c2lnbmF0dXJl"


def _routes() -> set[str]:
    """Every route template the serve-mode app documents (the access log must use these)."""
    app = create_app(
        Settings(
            cognito_user_pool_id="us-east-1_routes",
            cognito_client_id="routes",
            database_url="sqlite://",
            secret_key=SECRET_KEY,
        )
    )
    return set(app.openapi()["paths"]) | {"/openapi.json", "/docs", "/redoc"}


# --------------------------------------------------------------------------- the checks
# One test runs every check (xdist would otherwise run the flows once per worker); each
# check returns what it found wrong, and the test reports all of it.


def _secrets_logged(run: Run, text: str) -> list[str]:
    found = []
    for name, value in run.secrets.items():
        if len(value) < 12:  # a code: only as a whole token, not inside a hex id
            if re.search(rf"(?<![0-9A-Za-z]){re.escape(value)}(?![0-9A-Za-z])", text):
                found.append(f"{name} is in the log")
        elif value in text:
            found.append(f"{name} is in the log")
    for pattern in (JWT, BEARER, SAGA_TEMPORARY_PASSWORD):
        match = pattern.search(text)
        if match is not None:
            found.append(f"{pattern.pattern} matches {match.group(0)[:16]}...")
    return found


def _not_json(lines: list[str]) -> list[str]:
    found = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            found.append(f"not JSON: {line[:200]}")
            continue
        if not isinstance(entry, dict) or not {"ts", "level", "logger", "msg"} <= entry.keys():
            found.append(f"not a log object: {line[:200]}")
    return found


def _access_lines(run: Run, entries: list[dict[str, Any]]) -> list[str]:
    found = []
    access = [e for e in entries if e["logger"] == "authsvc.access" and e["msg"] == "request"]
    routes = _routes()
    for entry in access:
        if not {"request_id", "method", "route", "status", "duration_ms"} <= entry.keys():
            found.append(f"access line without its fields: {entry}")
        elif entry["route"] not in routes and entry["route"] != "unmatched":
            found.append(f"route is not a template: {entry['route']!r}")
        elif not isinstance(entry["status"], int) or not isinstance(
            entry["duration_ms"], (int, float)
        ):
            found.append(f"status or duration_ms not a number: {entry}")
    by_id: dict[str, list[dict[str, Any]]] = {}
    for entry in access:
        by_id.setdefault(str(entry.get("request_id")), []).append(entry)
    for request_id, method, status in run.requests:
        lines = by_id.get(request_id, [])
        if len(lines) != 1:
            found.append(f"{len(lines)} access lines for {method} ({status}) {request_id}")
        elif (lines[0]["method"], lines[0]["status"]) != (method, status):
            found.append(f"access line says {lines[0]}, the client got {method} {status}")
    seen = {(e.get("method"), e.get("route"), e.get("status")) for e in access}
    for expected in [
        ("GET", "/v1/admin/users/{username}", 200),
        ("GET", "/v1/admin/users/{username}", 404),
        ("DELETE", "/v1/admin/users/{username}/groups/{group}", 204),
        ("GET", "/v1/invitations/{invitation_id}", 200),
        ("POST", "/v1/invitations/{invitation_id}/resend", 202),
        ("GET", "unmatched", 404),  # the token in a path
        ("POST", "/v1/auth/sign-in", 415),  # refused before routing, still its template
    ]:
        if expected not in seen:
            found.append(f"no access line {expected}")
    return found


def _cognito_lines(entries: list[dict[str, Any]]) -> list[str]:
    found = []
    calls = [e for e in entries if e["logger"] == "authsvc.cognito" and e["msg"] == "cognito call"]
    for entry in calls:
        if not entry.get("operation") or not entry.get("outcome"):
            found.append(f"cognito call without operation or outcome: {entry}")
    seen = {(e.get("operation"), e.get("outcome")) for e in calls}
    for expected in [
        ("sign_up", "ok"),
        ("sign_up", "UsernameExistsException"),
        ("confirm_sign_up", "ok"),
        ("sign_in", "ok"),
        ("sign_in", "NotAuthorizedException"),
        ("respond_to_challenge", "ok"),
        ("refresh", "ok"),
        ("get_user", "ok"),
        ("update_user_attributes", "ok"),
        ("change_password", "ok"),
        ("forgot_password", "ok"),
        ("confirm_forgot_password", "ok"),
        ("global_sign_out", "ok"),
        ("associate_software_token", "ok"),
        ("verify_software_token", "ok"),
        ("admin_create_user", "ok"),
        ("admin_get_user", "ok"),
        ("list_users", "ok"),
        ("admin_update_user_attributes", "ok"),
        ("admin_set_user_password", "ok"),
        ("admin_add_user_to_group", "ok"),
        ("admin_remove_user_from_group", "ok"),
        ("admin_user_global_sign_out", "ok"),
        ("admin_disable_user", "ok"),
        ("admin_enable_user", "ok"),
        ("admin_delete_user", "ok"),
    ]:
        if expected not in seen:
            found.append(f"no cognito call line {expected}")
    return found


def test_every_flow_against_serve_logs_json_and_no_secret(serve: Serve, cognito: Emulator) -> None:
    with httpx.Client(base_url=serve.base_url, timeout=30) as http:
        run = Run(http)
        _self_service(run, cognito)
        _invitations_and_admin(run, cognito, serve.smtp)
    # Stop the server so its shutdown is in the log too.
    serve.process.send_signal(signal.SIGTERM)
    # uvicorn shuts down gracefully, then re-raises the signal: -SIGTERM is a clean exit.
    assert serve.process.wait(timeout=30) in (0, -signal.SIGTERM), serve.text()[-3000:]
    lines = [line for line in serve.text().splitlines() if line.strip()]
    assert len(lines) > 100, lines
    assert len(run.secrets) > 40, sorted(run.secrets)  # the flows really ran

    problems = _not_json(lines)
    entries = [json.loads(line) for line in lines if not problems]
    problems += _secrets_logged(run, "\n".join(lines))
    if entries:
        problems += _access_lines(run, entries)
        problems += _cognito_lines(entries)
    assert not problems, "\n".join(problems)


def test_aws_error_text_is_logged_without_what_the_call_carried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Unit level: an unmapped Cognito error whose message echoes the call's values."""
    from botocore.exceptions import ClientError

    from authsvc.cognito.errors import translate
    from authsvc.cognito.gateway import _sent_values

    session = "session-" + secrets.token_urlsafe(24)
    password = _password("Echo")
    jwt = _forged_jwt()
    kwargs = {
        "ClientId": "client-id-1",
        "Session": session,
        "ChallengeResponses": {"USERNAME": "echo@example.com", "NEW_PASSWORD": password},
    }
    exc = ClientError(
        {
            "Error": {
                "Code": "SomethingNew",
                "Message": f"bad {session} for {password} with {jwt} at client-id-1",
            }
        },
        "RespondToAuthChallenge",
    )
    with caplog.at_level("INFO", logger="authsvc.cognito"):
        err = translate("respond_to_challenge", exc, sent=_sent_values(kwargs))
    assert err.code == "upstream_error"
    logged = caplog.text
    assert "SomethingNew" in logged and "client-id-1" in logged  # still useful
    for secret in (session, password, jwt, "echo@example.com"):
        assert secret not in logged
    assert session not in err.detail and password not in err.detail
