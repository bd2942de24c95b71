"""SmtpMailer against a real SMTP server (aiosmtpd on loopback): a plain message, signing in,
and a refusal or an unreachable server as MailUnavailable that never shows the password."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from keyplane.domain.errors import MailUnavailable
from keyplane.mail import NullMailer, SmtpMailer, SmtpTarget

from support.smtp import Credentials, SmtpServer, free_port

PASSWORD = "s3cret-smtp-pass"


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_with_auth() -> Iterator[SmtpServer]:
    server = SmtpServer(credentials=Credentials("jobs", PASSWORD)).start()
    yield server
    server.stop()


def test_a_message_arrives_as_plain_text_with_its_headers(smtp: SmtpServer) -> None:
    mailer = SmtpMailer(SmtpTarget.parse(smtp.url), "keyplane@example.com")

    mailer.send(["dev@example.com", "ops@example.com"], "Key expiring", "Hello.\n")

    [(to, message)] = smtp.inbox.messages
    assert to == ["dev@example.com", "ops@example.com"]
    assert message["From"] == "keyplane@example.com"
    assert message["Subject"] == "Key expiring"
    assert message["Message-ID"]
    assert message.get_content_type() == "text/plain"
    assert message.get_payload(decode=True).replace(b"\r\n", b"\n") == b"Hello.\n"


def test_a_url_with_a_user_signs_in(smtp_with_auth: SmtpServer) -> None:
    url = f"smtp://jobs:{PASSWORD}@127.0.0.1:{smtp_with_auth.port}"
    mailer = SmtpMailer(SmtpTarget.parse(url), "keyplane@example.com")

    mailer.send(["dev@example.com"], "Signed in", "Hello.\n")

    assert len(smtp_with_auth.inbox.messages) == 1


def test_a_wrong_password_is_mail_unavailable_without_the_password(
    smtp_with_auth: SmtpServer,
) -> None:
    url = f"smtp://jobs:wrong-{PASSWORD}@127.0.0.1:{smtp_with_auth.port}"
    mailer = SmtpMailer(SmtpTarget.parse(url), "keyplane@example.com")

    with pytest.raises(MailUnavailable) as raised:
        mailer.send(["dev@example.com"], "Signed in", "Hello.\n")

    assert "535" in str(raised.value)
    assert PASSWORD not in str(raised.value)
    assert raised.value.__cause__ is None  # the smtplib error (and its arguments) is dropped
    assert smtp_with_auth.inbox.messages == []


def test_a_refused_message_is_mail_unavailable_naming_the_answer(smtp: SmtpServer) -> None:
    smtp.inbox.refuse = True
    mailer = SmtpMailer(SmtpTarget.parse(smtp.url), "keyplane@example.com")

    with pytest.raises(MailUnavailable, match="451"):
        mailer.send(["dev@example.com"], "Refused", "Hello.\n")


def test_an_unreachable_server_is_mail_unavailable_without_the_password() -> None:
    url = f"smtp://jobs:{PASSWORD}@127.0.0.1:{free_port()}"
    mailer = SmtpMailer(SmtpTarget.parse(url), "keyplane@example.com")

    with pytest.raises(MailUnavailable) as raised:
        mailer.send(["dev@example.com"], "Nobody there", "Hello.\n")

    assert f"127.0.0.1:{SmtpTarget.parse(url).port}" in str(raised.value)
    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "starttls", "user"),
    [
        ("smtp://mail.example.com", "mail.example.com", 25, False, False, None),
        (
            "smtp://u:p@mail.example.com:587?starttls=true",
            "mail.example.com",
            587,
            False,
            True,
            "u",
        ),
        ("smtps://mail.example.com", "mail.example.com", 465, True, False, None),
        ("smtps://mail.example.com?starttls=true", "mail.example.com", 465, True, False, None),
    ],
)
def test_the_url_says_where_and_how(
    url: str, host: str, port: int, tls: bool, starttls: bool, user: str | None
) -> None:
    target = SmtpTarget.parse(url)

    assert (target.host, target.port, target.implicit_tls, target.starttls) == (
        host,
        port,
        tls,
        starttls,
    )
    assert target.username == user


@pytest.mark.parametrize(
    "url", ["http://mail.example.com", "smtp://", "smtp://u:p@mail.example.com:port"]
)
def test_a_wrong_url_is_refused_without_the_password(url: str) -> None:
    with pytest.raises(ValueError, match="KEYPLANE_SMTP_URL") as raised:
        SmtpTarget.parse(url)
    assert ":p@" not in str(raised.value)


def test_the_null_mailer_sends_nothing() -> None:
    mailer = NullMailer()
    assert mailer.enabled is False
    mailer.send(["dev@example.com"], "Nothing", "Nothing.\n")
