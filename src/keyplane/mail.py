"""Outbound email over SMTP (``KEYPLANE_SMTP_URL``), and the mailer that sends nothing.

``smtp://user:pass@host:587?starttls=true`` upgrades with STARTTLS before signing in;
``smtps://…:465`` speaks TLS from the first byte; a URL without a user does not sign in.
The standard library's ``smtplib`` is the client: a job thread sends one message at a time,
so an asynchronous client would buy nothing. Credentials never reach a log line: an error
names the host and the server's answer only.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final
from urllib.parse import parse_qs, unquote, urlsplit

from keyplane.domain.errors import MailUnavailable

TIMEOUT: Final = 10.0
_TRUE: Final = frozenset(("1", "true", "yes", "on"))


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    implicit_tls: bool
    starttls: bool
    username: str | None
    password: str | None

    @classmethod
    def parse(cls, url: str) -> SmtpTarget:
        """Reads a KEYPLANE_SMTP_URL; a ValueError names what is wrong (never the password)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError("KEYPLANE_SMTP_URL must start with smtp:// or smtps://")
        if not parts.hostname:
            raise ValueError("KEYPLANE_SMTP_URL names no host")
        implicit = parts.scheme == "smtps"
        query = {k: v[-1].lower() for k, v in parse_qs(parts.query).items()}
        try:
            port = parts.port or (465 if implicit else 25)
        except ValueError as exc:
            raise ValueError("KEYPLANE_SMTP_URL has a port that is not a number") from exc
        return cls(
            host=parts.hostname,
            port=port,
            implicit_tls=implicit,
            starttls=not implicit and query.get("starttls", "false") in _TRUE,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


class SmtpMailer:
    """A Mailer on an SMTP server: one connection per message (messages are rare: warnings
    and notices, never per request)."""

    enabled = True

    def __init__(
        self, target: SmtpTarget, sender: str, *, tls: ssl.SSLContext | None = None
    ) -> None:
        self._target = target
        self._sender = sender
        self._tls = tls or ssl.create_default_context()

    def send(self, to: Sequence[str], subject: str, text: str) -> None:
        message = EmailMessage()
        message["From"] = self._sender
        message["To"] = ", ".join(to)
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain="keyplane")
        message.set_content(text)
        target = self._target
        try:
            client: smtplib.SMTP
            if target.implicit_tls:
                client = smtplib.SMTP_SSL(
                    target.host, target.port, timeout=TIMEOUT, context=self._tls
                )
            else:
                client = smtplib.SMTP(target.host, target.port, timeout=TIMEOUT)
            with client:
                if target.starttls:
                    client.starttls(context=self._tls)
                if target.username is not None:
                    client.login(target.username, target.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            raise MailUnavailable(
                f"the mail server {target.host}:{target.port} did not take the message: "
                f"{_reason(exc)}"
            ) from None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        error = exc.smtp_error
        shown = error.decode(errors="replace") if isinstance(error, bytes) else error
        return f"{exc.smtp_code} {shown}"
    return type(exc).__name__ if not str(exc) else str(exc)


class NullMailer:
    """No KEYPLANE_SMTP_URL: nothing is sent (warnings still go out as webhooks)."""

    enabled = False

    def send(self, to: Sequence[str], subject: str, text: str) -> None:
        pass
