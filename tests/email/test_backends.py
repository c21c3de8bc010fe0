"""The SMTP and SES backends against real servers: aiosmtpd on a loopback port, and
moto's SES v2 served by the same moto server the tests use for Cognito."""

from __future__ import annotations

import io
import json
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import boto3
import pytest
from aiosmtpd.controller import Controller

from authsvc.config import Settings
from authsvc.dev.outbox import DevOutbox
from authsvc.email.backends import (
    ConsoleBackend,
    DeliveryError,
    Message,
    SesBackend,
    SmtpBackend,
    make_backend,
)

LINK = "http://app.example.test/accept-invitation#token=AbC-dEf_123"


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "cognito_user_pool_id": "us-east-1_backends",
        "cognito_client_id": "backends",
        "dev_mode": True,
        "email_from": "authsvc <no-reply@authsvc.example.com>",
    }
    values.update(overrides)
    return Settings(**values)


def message(to: str = "invitee@example.com") -> Message:
    return Message(
        id=str(uuid.uuid4()),
        kind="invitation",
        to=to,
        subject="You're invited",
        text=f"Hello,\n\nOpen this link to choose your password:\n\n{LINK}\n",
        link=LINK,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Inbox:
    """An aiosmtpd handler keeping what it receives."""

    def __init__(self) -> None:
        self.received: list[tuple[str, list[str], EmailMessage]] = []

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd API
        parsed = message_from_bytes(envelope.content, policy=policy.default)
        self.received.append((envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, Inbox]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, inbox
    finally:
        controller.stop()


class TestSmtpBackend:
    def test_message_is_received(self, smtp_server):
        port, inbox = smtp_server
        backend = make_backend(
            settings(
                email_backend="smtp", smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False
            ),
            None,
        )
        assert isinstance(backend, SmtpBackend)
        sent = message()
        backend.send(sent)

        [(mail_from, rcpt_tos, mail)] = inbox.received
        assert mail_from == "no-reply@authsvc.example.com"
        assert rcpt_tos == ["invitee@example.com"]
        assert mail["To"] == "invitee@example.com"
        assert mail["Subject"] == "You're invited"
        assert sent.id in mail["Message-ID"]
        assert mail["X-Authsvc-Dedup-Key"] == sent.id
        assert LINK in mail.get_content()

    def test_server_down_is_a_delivery_error(self):
        backend = SmtpBackend(
            settings(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False)
        )
        with pytest.raises(DeliveryError, match="smtp"):
            backend.send(message())

    def test_starttls_refused_by_the_server_is_a_delivery_error(self, smtp_server):
        port, inbox = smtp_server
        backend = SmtpBackend(settings(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True))
        with pytest.raises(DeliveryError):
            backend.send(message())
        assert inbox.received == []


@pytest.fixture
def aws_credentials(monkeypatch):
    # SesBackend uses the default credential chain (a task role in production).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def moto_sent_messages(endpoint_url: str) -> list[dict[str, Any]]:
    with urllib.request.urlopen(f"{endpoint_url}/moto-api/data.json", timeout=10) as response:
        data = json.load(response)
    messages: list[dict[str, Any]] = data.get("ses", {}).get("Message", [])
    return messages


class TestSesBackend:
    def ses_settings(self, cognito, sender: str) -> Settings:
        return settings(
            email_backend="ses",
            email_from=f"authsvc <{sender}>",
            ses_region=cognito.pool.region,
            ses_endpoint_url=cognito.endpoint_url,
        )

    def test_send_through_moto(self, cognito, aws_credentials):
        sender = f"sender-{uuid.uuid4().hex[:8]}@authsvc.example.com"
        boto3.client(
            "sesv2", endpoint_url=cognito.endpoint_url, region_name=cognito.pool.region
        ).create_email_identity(EmailIdentity=sender)
        backend = make_backend(self.ses_settings(cognito, sender), None)
        assert isinstance(backend, SesBackend)
        to = f"to-{uuid.uuid4().hex[:8]}@example.com"
        sent = message(to)
        backend.send(sent)

        recorded = [m for m in moto_sent_messages(cognito.endpoint_url) if to in str(m)]
        assert len(recorded) == 1
        assert recorded[0]["subject"] == "You're invited"
        assert LINK in recorded[0]["body"]
        assert recorded[0]["destinations"]["ToAddresses"] == [to]

    def test_unverified_sender_is_a_delivery_error(self, cognito, aws_credentials):
        sender = f"unverified-{uuid.uuid4().hex[:8]}@authsvc.example.com"
        backend = SesBackend(self.ses_settings(cognito, sender))
        with pytest.raises(DeliveryError, match="ses"):
            backend.send(message())


class TestConsoleBackend:
    def test_dev_outbox_gets_the_link(self):
        box = DevOutbox(stream=io.StringIO())
        backend = make_backend(settings(), box)
        assert isinstance(backend, ConsoleBackend)
        backend.send(message("dev@example.com"))
        [got] = box.list(to="dev@example.com")
        assert (got.kind, got.link) == ("invitation", LINK)

    def test_without_dev_outbox_nothing_is_logged_but_the_kind(self, caplog):
        caplog.set_level("INFO", logger="authsvc.email")
        ConsoleBackend(None).send(message())
        assert "token" not in caplog.text and LINK not in caplog.text
        assert any(getattr(r, "kind", None) == "invitation" for r in caplog.records)
