"""keyplane/outbound.py: the webhook sender against a real receiver on loopback: addresses
checked after DNS and connected to as checked, no redirects, a time limit (DNS included), a
short excerpt, and over https a certificate checked against the URL's host name."""

from __future__ import annotations

import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from keyplane.outbound import AddressInfo, HttpWebhookSender

from conftest import free_port
from support.receiver import Receiver

HEADERS = {"content-type": "application/json"}


def test_a_name_resolving_to_loopback_is_refused_when_private_targets_are_not_allowed(
    receiver: Receiver,
) -> None:
    sender = HttpWebhookSender(allow_private=False)
    outcome = sender.send(f"http://localhost:{receiver.port}/hooks", HEADERS, b"{}")
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "refused" in outcome.error
    assert receiver.received == []


def test_a_name_resolving_to_loopback_is_reached_by_default(receiver: Receiver) -> None:
    receiver.status, receiver.answer = 200, b"thanks"
    outcome = HttpWebhookSender(allow_private=True).send(
        f"http://localhost:{receiver.port}/hooks", HEADERS, b"{}"
    )
    assert outcome.ok
    assert outcome.excerpt == "thanks"
    assert len(receiver.received) == 1


def test_the_connection_goes_to_the_address_that_was_checked(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A resolver that answers loopback first and the metadata address after (DNS
    rebinding): one lookup only, and the connection goes where the check looked."""
    answers = ["127.0.0.1", "169.254.169.254"]
    asked: list[str] = []

    def rebinding(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        asked.append(host)
        address = answers[min(len(asked) - 1, 1)]
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr("keyplane.outbound.socket.getaddrinfo", rebinding)
    receiver.status = 200
    outcome = HttpWebhookSender(allow_private=True).send(
        f"http://rebind.example:{receiver.port}/hooks", HEADERS, b"{}"
    )
    assert outcome.ok, outcome
    assert asked == ["rebind.example"]
    assert receiver.received[0].headers["host"] == f"rebind.example:{receiver.port}"


def test_a_name_with_any_forbidden_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def both(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("93.184.216.34", port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port)),
        ]

    monkeypatch.setattr("keyplane.outbound.socket.getaddrinfo", both)
    outcome = HttpWebhookSender(allow_private=True).send("http://mixed.example/", HEADERS, b"{}")
    assert outcome.error is not None
    assert "169.254.169.254" in outcome.error


def test_an_address_that_refuses_the_connection_falls_back_to_the_next_answer(
    receiver: Receiver,
) -> None:
    closed = free_port()

    def two(host: str, port: int) -> Sequence[AddressInfo]:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", closed)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", receiver.port)),
        ]

    def none_listening(host: str, port: int) -> Sequence[AddressInfo]:
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", closed))]

    url = f"http://two.example:{receiver.port}/hooks"
    assert HttpWebhookSender(allow_private=True, resolver=two).send(url, HEADERS, b"{}").ok
    outcome = HttpWebhookSender(allow_private=True, resolver=none_listening).send(
        url, HEADERS, b"{}"
    )
    assert outcome.error is not None
    assert "cannot connect to two.example" in outcome.error
    assert len(receiver.received) == 1


def test_an_unknown_name_is_an_error_not_an_exception() -> None:
    outcome = HttpWebhookSender(allow_private=True).send(
        "http://no-such-host.invalid/", HEADERS, b"{}"
    )
    assert outcome.status_code is None
    assert outcome.error is not None


def test_a_redirect_is_an_answer_not_a_new_target(receiver: Receiver) -> None:
    receiver.status, receiver.location = 302, "http://169.254.169.254/"
    outcome = HttpWebhookSender(allow_private=True).send(receiver.url, HEADERS, b"{}")
    assert outcome.status_code == 302
    assert not outcome.ok
    assert len(receiver.received) == 1


def test_a_slow_endpoint_times_out(receiver: Receiver) -> None:
    receiver.delay = 2.0
    outcome = HttpWebhookSender(allow_private=True, timeout=0.3).send(receiver.url, HEADERS, b"{}")
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "timed out" in outcome.error
    assert outcome.latency_ms < 1500


def test_only_the_start_of_a_long_answer_is_kept(receiver: Receiver) -> None:
    receiver.status, receiver.answer = 500, "é".encode() * 100_000
    outcome = HttpWebhookSender(allow_private=True).send(receiver.url, HEADERS, b"{}")
    assert outcome.status_code == 500
    assert 0 < len(outcome.excerpt) <= 500


# ---- the time limit is the whole attempt's, DNS included -----------------------------------


@pytest.fixture
def trickler() -> Iterator[tuple[int, list[bytes]]]:
    """A server answering one line every 0.1 s, from a list a test sets (then a byte of
    body every 0.1 s): each read is quick, the answer never ends. Yields its port and the
    list."""
    server = socket.create_server(("127.0.0.1", 0))
    lines: list[bytes] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                try:
                    for line in [*lines, *([b"x"] * 30)]:
                        conn.sendall(line)
                        if stop.wait(0.1):
                            return
                except OSError:
                    continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], lines
    stop.set()
    server.close()
    thread.join(5)


def test_headers_that_trickle_in_end_with_the_attempt_s_limit(
    trickler: tuple[int, list[bytes]],
) -> None:
    port, lines = trickler
    lines.extend([b"HTTP/1.1 200 OK\r\n", *(b"x-slow-%d: 1\r\n" % n for n in range(30))])
    started = time.monotonic()
    outcome = HttpWebhookSender(allow_private=True, timeout=0.5).send(
        f"http://127.0.0.1:{port}/hooks", HEADERS, b"{}"
    )
    assert time.monotonic() - started < 1.2
    assert outcome.error is not None
    assert "timed out" in outcome.error


def test_a_body_that_trickles_in_keeps_the_status_and_what_came_within_the_limit(
    trickler: tuple[int, list[bytes]],
) -> None:
    port, lines = trickler
    lines.append(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
    started = time.monotonic()
    outcome = HttpWebhookSender(allow_private=True, timeout=0.5).send(
        f"http://127.0.0.1:{port}/hooks", HEADERS, b"{}"
    )
    assert time.monotonic() - started < 1.2
    assert outcome.status_code == 200
    assert 0 < len(outcome.excerpt) < 10


def test_a_lookup_that_hangs_times_out_within_the_attempt_s_limit() -> None:
    released = threading.Event()

    def hanging(host: str, port: int) -> Sequence[AddressInfo]:
        released.wait(30)
        return []

    try:
        started = time.monotonic()
        outcome = HttpWebhookSender(allow_private=True, timeout=0.5, resolver=hanging).send(
            "http://slow-dns.example/hooks", HEADERS, b"{}"
        )
        assert time.monotonic() - started < 1.5
    finally:
        released.set()
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "timed out" in outcome.error


def test_a_failing_lookup_is_an_error_naming_the_host() -> None:
    def failing(host: str, port: int) -> Sequence[AddressInfo]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    outcome = HttpWebhookSender(allow_private=True, resolver=failing).send(
        "http://gone.example/hooks", HEADERS, b"{}"
    )
    assert outcome.error is not None
    assert "gone.example" in outcome.error


# ---- https: the certificate is checked against the name, the connection goes to the address


def _loopback_for(*names: str) -> tuple[list[str], Any]:
    asked: list[str] = []

    def resolver(host: str, port: int) -> Sequence[AddressInfo]:
        asked.append(host)
        assert host in names, host
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]

    return asked, resolver


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.example (the openssl command line: no
    dependency of the project's)."""
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-days", "1", "-subj", "/CN=hooks.example",
            "-addext", "subjectAltName=DNS:hooks.example",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_receiver(certificate: tuple[Path, Path]) -> Iterator[Receiver]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    started = Receiver(tls=context).start()
    yield started
    started.stop()


def _trusting(certificate: tuple[Path, Path]) -> ssl.SSLContext:
    """The verifying default, trusting the test's certificate as a CA."""
    return ssl.create_default_context(cafile=str(certificate[0]))


def test_https_checks_the_certificate_against_the_name_and_connects_to_the_checked_address(
    tls_receiver: Receiver, certificate: tuple[Path, Path]
) -> None:
    asked, resolver = _loopback_for("hooks.example")
    sender = HttpWebhookSender(
        allow_private=True, resolver=resolver, ssl_context=_trusting(certificate)
    )
    outcome = sender.send(f"https://hooks.example:{tls_receiver.port}/hooks", HEADERS, b"{}")
    assert outcome.ok, outcome
    assert asked == ["hooks.example"]
    assert tls_receiver.received[0].headers["host"] == f"hooks.example:{tls_receiver.port}"


def test_a_certificate_for_another_name_is_refused(
    tls_receiver: Receiver, certificate: tuple[Path, Path]
) -> None:
    """The same server and address, reached by a name its certificate does not carry."""
    _, resolver = _loopback_for("other.example")
    sender = HttpWebhookSender(
        allow_private=True, resolver=resolver, ssl_context=_trusting(certificate)
    )
    outcome = sender.send(f"https://other.example:{tls_receiver.port}/hooks", HEADERS, b"{}")
    assert outcome.status_code is None
    assert outcome.error is not None
    assert "not valid for 'other.example'" in outcome.error, outcome.error
    assert tls_receiver.received == []


def test_a_self_signed_certificate_is_refused_by_default(tls_receiver: Receiver) -> None:
    """Without a context of the test's, the system's trust store decides: verification on."""
    _, resolver = _loopback_for("hooks.example")
    outcome = HttpWebhookSender(allow_private=True, resolver=resolver).send(
        f"https://hooks.example:{tls_receiver.port}/hooks", HEADERS, b"{}"
    )
    assert outcome.error is not None
    assert "self-signed certificate" in outcome.error, outcome.error
    assert tls_receiver.received == []
