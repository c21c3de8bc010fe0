"""Email delivery backends: console (dev), SMTP, Amazon SES (sesv2)."""

from __future__ import annotations

import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from authsvc.cognito.gateway import new_client
from authsvc.config import Settings
from authsvc.dev.outbox import DevOutbox

log = logging.getLogger("authsvc.email")


class DeliveryError(Exception):
    """The backend could not deliver; the worker retries later."""


@dataclass(frozen=True)
class Message:
    id: str  # the outbox row id: the dedup key (Message-ID)
    kind: str
    to: str
    subject: str
    text: str
    link: str | None = None
    code: str | None = None


class EmailBackend(Protocol):
    def send(self, message: Message) -> None: ...


class ConsoleBackend:
    """Dev mode: print and list in the dev outbox. Elsewhere: log that a message went out
    without its content (links carry tokens, which never go to a log)."""

    def __init__(self, outbox: DevOutbox | None) -> None:
        self.outbox = outbox

    def send(self, message: Message) -> None:
        if self.outbox is not None:
            self.outbox.deliver(
                to=message.to,
                subject=message.subject,
                kind=message.kind,
                body=message.text,
                code=message.code,
                link=message.link,
            )
            return
        log.info("email (console backend, content withheld)", extra={"kind": message.kind})


class SmtpBackend:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, message: Message) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["From"] = s.email_from
        mail["To"] = message.to
        mail["Subject"] = message.subject
        # Derived from the outbox row id alone (make_msgid adds time, pid and randomness):
        # a copy sent again after a crash carries the same Message-ID, and receivers can
        # drop the duplicate.
        mail["Message-ID"] = f"<{message.id}@authsvc>"
        mail["X-Authsvc-Dedup-Key"] = message.id
        mail.set_content(message.text)
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        try:
            if s.smtp_ssl:
                client: smtplib.SMTP = smtplib.SMTP_SSL(
                    s.smtp_host, s.smtp_port, timeout=10, context=ssl.create_default_context()
                )
            else:
                client = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=10)
            with client:
                if s.smtp_starttls and not s.smtp_ssl:
                    client.starttls(context=ssl.create_default_context())
                if s.smtp_username and password:
                    client.login(s.smtp_username, password)
                client.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"smtp: {type(exc).__name__}") from None


class SesBackend:
    def __init__(self, settings: Settings, client: Any | None = None) -> None:
        self.settings = settings
        if client is None:
            kwargs: dict[str, Any] = {
                "region_name": settings.ses_region or settings.cognito_region,
                "config": Config(
                    retries={"mode": "standard", "total_max_attempts": 3},
                    connect_timeout=3,
                    read_timeout=10,
                ),
            }
            if settings.ses_endpoint_url:
                kwargs["endpoint_url"] = settings.ses_endpoint_url
            client = new_client("sesv2", **kwargs)
        self.client = client

    def send(self, message: Message) -> None:
        try:
            self.client.send_email(
                FromEmailAddress=self.settings.email_from,
                Destination={"ToAddresses": [message.to]},
                Content={
                    "Simple": {
                        "Subject": {"Data": message.subject, "Charset": "UTF-8"},
                        "Body": {"Text": {"Data": message.text, "Charset": "UTF-8"}},
                    }
                },
                EmailTags=[{"Name": "authsvc_kind", "Value": message.kind}],
            )
        except (ClientError, BotoCoreError) as exc:
            raise DeliveryError(f"ses: {type(exc).__name__}") from None


def make_backend(settings: Settings, outbox: DevOutbox | None) -> EmailBackend:
    if settings.email_backend == "smtp":
        return SmtpBackend(settings)
    if settings.email_backend == "ses":
        return SesBackend(settings)
    return ConsoleBackend(outbox)
