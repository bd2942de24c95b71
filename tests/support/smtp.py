"""A real SMTP server for tests: aiosmtpd on a free loopback port, keeping what it receives."""

from __future__ import annotations

import email
import socket
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Inbox:
    """Every message the server accepted: its envelope recipients and parsed content."""

    messages: list[tuple[list[str], Message]] = field(default_factory=list)
    refuse: bool = False

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.refuse:
            return "451 4.3.0 try again later"
        content = envelope.content
        raw = content if isinstance(content, bytes) else str(content).encode()
        self.messages.append(([str(r) for r in envelope.rcpt_tos], email.message_from_bytes(raw)))
        return "250 OK"


class Credentials:
    """An aiosmtpd authenticator accepting one user name and password."""

    def __init__(self, user: str, password: str) -> None:
        self._pair = (user.encode(), password.encode())

    def __call__(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == self._pair
        return AuthResult(success=ok, handled=False)


class SmtpServer:
    """Started on a free port (or a given one, to come back after a stop)."""

    def __init__(self, *, credentials: Credentials | None = None, port: int | None = None):
        self.inbox = Inbox()
        self.port = port or free_port()
        self._credentials = credentials
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        extra: dict[str, Any] = {}
        if self._credentials is not None:
            extra = {
                "authenticator": self._credentials,
                "auth_require_tls": False,
                # Required would make aiosmtpd warn about AUTH without TLS (the tests have no
                # certificate); the authenticator still refuses a wrong password.
                "auth_required": False,
            }
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port, **extra)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"
