"""A strict Cognito in front of moto: a loopback HTTP proxy that enforces, for every call of
an app client with a secret, the Cognito rules moto skips (REFERENCE.md, "Cognito rules moto
does not enforce"), and shapes answers the way Cognito shapes them.

Enforced (a violation is answered with Cognito's error, never forwarded):
- SECRET_HASH present and right: over the name sent for InitiateAuth USER_PASSWORD_AUTH and
  the self-service calls (SignUp, ConfirmSignUp, ResendConfirmationCode, ForgotPassword,
  ConfirmForgotPassword); over the actual username for RespondToAuthChallenge and
  REFRESH_TOKEN_AUTH.
- RespondToAuthChallenge: ChallengeResponses.USERNAME is the actual username (not an alias)
  of the user the session was issued to.
- SignUp on a pool that lets only administrators create users (``AllowAdminCreateUserOnly``)
  is refused, for any app client.
- ConfirmForgotPassword: the code is the one ForgotPassword issued (moto accepts any code
  that lacks its prefix). Sign-up codes are accepted as moto accepts them.
Shaped: ChallengeParameters as Cognito gives them (``USER_ID_FOR_SRP`` on every challenge,
``requiredAttributes``/``userAttributes`` on NEW_PASSWORD_REQUIRED), never moto's ``USERNAME``.

moto runs in this process (``EmbeddedCognito``), so the layer reads the truth (users, their
actual usernames, challenge sessions, refresh tokens, client secrets) from moto's own state.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

TARGET_PREFIX = "AWSCognitoIdentityProviderService."
MOTO_ACCOUNT = "123456789012"
MOTO_CODE_HEADER = "x-moto-forgot-password-confirmation-code"
# Calls whose SECRET_HASH is over the name the caller sent (Username / SecretHash).
SELF_SERVICE = {
    "SignUp",
    "ConfirmSignUp",
    "ResendConfirmationCode",
    "ForgotPassword",
    "ConfirmForgotPassword",
}


def secret_hash(username: str, client_id: str, secret: str) -> str:
    digest = hmac.new(secret.encode(), (username + client_id).encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


class Refusal(Exception):  # noqa: N818 - Cognito's error, not a bug
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class StrictCognito:
    upstream: str  # moto's endpoint URL
    region: str = "us-east-1"
    refusals: list[tuple[str, str]] = field(default_factory=list)
    calls: list[str] = field(default_factory=list)
    _reset_codes: dict[tuple[str, str], str] = field(default_factory=dict)
    # operation -> (HTTP status, error code) answered instead of forwarding, until cleared
    faults: dict[str, tuple[int, str]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None

    # -- moto's state ---------------------------------------------------------------------

    @property
    def _backend(self) -> Any:
        from moto.cognitoidp.models import cognitoidp_backends

        return cognitoidp_backends[MOTO_ACCOUNT][self.region]

    def _pool_of_client(self, client_id: str) -> tuple[Any, Any] | None:
        for pool in self._backend.user_pools.values():
            client = pool.clients.get(client_id)
            if client is not None:
                return pool, client
        return None

    @staticmethod
    def _user(pool: Any, name: str) -> Any:
        return pool._get_user(name)  # by username or by alias (email), as moto resolves

    # -- checks ---------------------------------------------------------------------------

    def _require_hash(self, sent: str | None, name: str, client: Any) -> None:
        if not sent or not hmac.compare_digest(sent, secret_hash(name, client.id, client.secret)):
            raise Refusal(
                "NotAuthorizedException",
                f"Client {client.id} is configured with secret but SECRET_HASH was not"
                " received or is wrong",
            )

    def check(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Refuse what Cognito refuses; return the body to forward to moto."""
        found = self._pool_of_client(str(body.get("ClientId", "")))
        if found is None:
            return body
        pool, client = found
        admin_only = (pool.extended_config.get("AdminCreateUserConfig") or {}).get(
            "AllowAdminCreateUserOnly"
        )
        if operation == "SignUp" and admin_only:
            raise Refusal("NotAuthorizedException", "SignUp is not permitted for this user pool")
        if not client.generate_secret:
            return body
        if operation == "InitiateAuth":
            params = body.get("AuthParameters") or {}
            flow = body.get("AuthFlow")
            if flow == "USER_PASSWORD_AUTH":
                self._require_hash(params.get("SECRET_HASH"), params.get("USERNAME", ""), client)
            elif flow in {"REFRESH_TOKEN_AUTH", "REFRESH_TOKEN"}:
                filed = pool.refresh_tokens.get(params.get("REFRESH_TOKEN", ""))
                if filed is None:
                    return body  # moto answers it (revoked or unknown)
                _, filed_under, _ = filed
                user = self._user(pool, filed_under)
                actual = user.username if user is not None else filed_under
                self._require_hash(params.get("SECRET_HASH"), actual, client)
                # moto disagrees with Cognito here: it hashes over the name the token was
                # first issued to (the email after a password sign-in; EmbeddedCognito now
                # files tokens under the actual username, but a moto without that patch does
                # not). The hash was checked as Cognito checks it; forward the one moto wants.
                params = {
                    **params,
                    "SECRET_HASH": secret_hash(filed_under, client.id, client.secret),
                }
                body = {**body, "AuthParameters": params}
        elif operation == "RespondToAuthChallenge":
            responses = body.get("ChallengeResponses") or {}
            issued = self._backend.sessions.get(body.get("Session", ""))
            if issued is not None:
                user = self._user(pool, issued[0])
                actual = user.username if user is not None else issued[0]
                if responses.get("USERNAME") != actual:
                    raise Refusal(
                        "NotAuthorizedException",
                        "Invalid session for the user: USERNAME must be the actual username"
                        " the session was issued to, not an alias",
                    )
            self._require_hash(responses.get("SECRET_HASH"), responses.get("USERNAME", ""), client)
        elif operation in SELF_SERVICE:
            name = str(body.get("Username", ""))
            self._require_hash(body.get("SecretHash"), name, client)
            if operation == "ConfirmForgotPassword":
                user = self._user(pool, name)
                key = (pool.id, user.username if user is not None else name)
                with self._lock:
                    expected = self._reset_codes.get(key)
                if expected is None or not hmac.compare_digest(
                    str(body.get("ConfirmationCode", "")), expected
                ):
                    raise Refusal(
                        "CodeMismatchException",
                        "Invalid verification code provided, please try again.",
                    )
        return body

    def shape(
        self, operation: str, body: dict[str, Any], answer: dict[str, Any], headers: Any
    ) -> dict[str, Any]:
        """moto's answer, shaped the way Cognito shapes it."""
        found = self._pool_of_client(str(body.get("ClientId", "")))
        if found is None:
            return answer
        pool, _ = found
        if operation == "ForgotPassword" and headers.get(MOTO_CODE_HEADER):
            user = self._user(pool, str(body.get("Username", "")))
            if user is not None:
                with self._lock:
                    self._reset_codes[(pool.id, user.username)] = headers[MOTO_CODE_HEADER]
        if operation == "ConfirmForgotPassword":
            user = self._user(pool, str(body.get("Username", "")))
            with self._lock:
                self._reset_codes.pop((pool.id, getattr(user, "username", "")), None)
        challenge = answer.get("ChallengeName")
        if operation in {"InitiateAuth", "RespondToAuthChallenge"} and challenge:
            if operation == "InitiateAuth":
                name = (body.get("AuthParameters") or {}).get("USERNAME", "")
            else:
                name = (body.get("ChallengeResponses") or {}).get("USERNAME", "")
            user = self._user(pool, name)
            parameters: dict[str, str] = {"USER_ID_FOR_SRP": user.username if user else name}
            if challenge == "NEW_PASSWORD_REQUIRED" and user is not None:
                attributes = {
                    a["Name"]: a["Value"]
                    for a in user.attributes
                    if a["Name"] not in {"sub", "email_verified"}
                }
                parameters["requiredAttributes"] = "[]"
                parameters["userAttributes"] = json.dumps(attributes)
            answer = {**answer, "ChallengeParameters": parameters}
        return answer

    # -- the proxy ------------------------------------------------------------------------

    def start(self) -> str:
        layer = self
        target = urlsplit(self.upstream)

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def _forward(self, payload: bytes) -> tuple[int, Any, bytes]:
                connection = http.client.HTTPConnection(target.hostname, target.port, timeout=30)
                headers = {
                    k: v
                    for k, v in self.headers.items()
                    if k.lower() not in {"host", "content-length", "connection"}
                }
                headers["Content-Length"] = str(len(payload))
                connection.request(self.command, self.path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
                connection.close()
                return response.status, response.headers, data

            def _reply(self, status: int, headers: Any, data: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in {"content-length", "connection", "transfer-encoding"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._reply(*self._forward(b""))

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                target_header = self.headers.get("X-Amz-Target", "")
                if not target_header.startswith(TARGET_PREFIX):
                    self._reply(*self._forward(raw))
                    return
                operation = target_header[len(TARGET_PREFIX) :]
                body = json.loads(raw or b"{}")
                layer.calls.append(operation)
                fault = layer.faults.get(operation)
                if fault is not None:  # an injected outage, not a rule
                    status, code = fault
                    error = json.dumps({"__type": code, "message": "injected fault"})
                    self._reply(
                        status,
                        {"Content-Type": "application/x-amz-json-1.1", "x-amzn-ErrorType": code},
                        error.encode(),
                    )
                    return
                try:
                    forwarded = layer.check(operation, body)
                except Refusal as refusal:
                    layer.refusals.append((operation, refusal.message))
                    error = json.dumps({"__type": refusal.code, "message": refusal.message})
                    self._reply(
                        400,
                        {
                            "Content-Type": "application/x-amz-json-1.1",
                            "x-amzn-ErrorType": refusal.code,
                        },
                        error.encode(),
                    )
                    return
                status, headers, data = self._forward(json.dumps(forwarded).encode())
                if status == 200 and data:
                    shaped = layer.shape(operation, body, json.loads(data), headers)
                    data = json.dumps(shaped).encode()
                self._reply(status, headers, data)

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self._server = server
        return f"http://127.0.0.1:{server.server_address[1]}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
