"""Flows the tests repeat: make a confirmed user, sign in, read the dev outbox."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from authsvc.dev.outbox import DevOutbox

PASSWORD = "Passw0rd!"


def new_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}@example.com"


def latest_code(outbox: DevOutbox, email: str, kind: str) -> str:
    messages = outbox.list(to=email, kind=kind)
    assert messages, f"no {kind} message for {email}"
    code = messages[0].code
    assert code is not None
    return code


def sign_up(client: TestClient, email: str, password: str = PASSWORD, **extra: Any) -> Any:
    body = {"email": email, "password": password, "family_name": "Tester", **extra}
    return client.post("/v1/auth/sign-up", json=body)


def confirmed_user(
    client: TestClient,
    outbox: DevOutbox,
    email: str | None = None,
    password: str = PASSWORD,
    **extra: Any,
) -> str:
    email = email or new_email()
    assert sign_up(client, email, password, **extra).status_code == 202
    code = latest_code(outbox, email, "sign_up_code")
    response = client.post("/v1/auth/sign-up/confirm", json={"email": email, "code": code})
    assert response.status_code == 204, response.text
    return email


@dataclass
class Tokens:
    access_token: str
    id_token: str
    refresh_token: str

    @property
    def bearer(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


def sign_in(client: TestClient, email: str, password: str = PASSWORD) -> Tokens:
    response = client.post("/v1/auth/sign-in", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["kind"] == "tokens", body
    return Tokens(body["access_token"], body["id_token"], body["refresh_token"])


def signed_in_user(client: TestClient, outbox: DevOutbox, **extra: Any) -> tuple[str, Tokens]:
    email = confirmed_user(client, outbox, **extra)
    return email, sign_in(client, email)


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json"), response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert {"type", "title", "detail"} <= body.keys()
    return body
