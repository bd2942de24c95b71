"""keyplane/outbound.py: the webhook sender against a real receiver on loopback: addresses
checked after DNS and connected to as checked, no redirects, a time limit, a short excerpt."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from keyplane.outbound import HttpWebhookSender

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
