"""Retries against a real HTTP server on loopback that answers as scripted: 429 and 503 with
or without Retry-After, a dropped connection after the request arrived, a slow answer."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from keyplane_client import (
    APIConnectionError,
    APITimeoutError,
    AsyncKeyplane,
    InternalServerError,
    Keyplane,
    RateLimitedError,
    ServiceUnavailableError,
    UnexpectedResponseError,
)

from conftest import free_port
from support.aio import run

API_KEY = "kp_test_" + "A" * 38
PAGE = {"data": [], "next_cursor": None}
VERDICT = {"valid": True, "code": "VALID", "key_id": "key_1", "scopes": ["*"]}
NOW = "2026-12-01T00:00:00Z"
KEY = {
    "id": "key_1",
    "name": "k",
    "masked_key": "kp_test_…AAAA",
    "status": "active",
    "created_at": NOW,
}


@dataclass
class Answer:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # close the connection after reading the request, answering nothing
    delay: float = 0.0
    raw: bytes | None = None  # a body that is not JSON (a proxy's error page)


def problem(status: int, retry_after: str | None = None, **extra: Any) -> Answer:
    headers = {"Retry-After": retry_after} if retry_after is not None else {}
    body = {"type": "urn:keyplane:problem:x", "title": "T", "status": status, "detail": "d"}
    return Answer(status, {**body, **extra}, headers)


class Scripted:
    """Answers each request with the next scripted answer (the last one ever after)."""

    def __init__(self, port: int = 0) -> None:
        self.script: list[Answer] = []
        self.received: list[tuple[str, str, bytes]] = []
        scripted = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                scripted.received.append((self.command, self.path, body))
                answer = scripted.script.pop(0) if len(scripted.script) > 1 else scripted.script[0]
                time.sleep(answer.delay)
                if answer.drop:
                    self.close_connection = True
                    return
                payload = json.dumps(answer.body).encode() if answer.body is not None else b""
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                if answer.raw is not None:
                    payload = answer.raw
                    self.send_header("Content-Type", "text/html")
                else:
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_GET(self) -> None:
                self._answer()

            def do_POST(self) -> None:
                self._answer()

            def do_PATCH(self) -> None:
                self._answer()

            def do_DELETE(self) -> None:
                self._answer()

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def answer(self, *answers: Answer) -> Scripted:
        self.script = list(answers)
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted()
    yield scripted
    scripted.stop()


def test_a_429_is_retried_after_its_retry_after(server: Scripted) -> None:
    server.answer(problem(429, "1"), Answer(200, PAGE))
    started = time.monotonic()
    with Keyplane(server.url, API_KEY) as kp:
        assert list(kp.apps.list()) == []
    assert time.monotonic() - started >= 1.0
    assert len(server.received) == 2


def test_a_503_without_retry_after_backs_off_then_gives_up(server: Scripted) -> None:
    server.answer(problem(503))
    started = time.monotonic()
    with Keyplane(server.url, API_KEY) as kp, pytest.raises(ServiceUnavailableError):
        kp.org.get()
    # Two waits: 0.25-0.5 s, then 0.5-1 s (half fixed, half jitter).
    assert time.monotonic() - started >= 0.75
    assert len(server.received) == 3  # the first try and max_retries=2


def test_max_retries_zero_sends_once(server: Scripted) -> None:
    server.answer(problem(503, "0"))
    with Keyplane(server.url, API_KEY, max_retries=0) as kp, pytest.raises(ServiceUnavailableError):
        kp.org.get()
    assert len(server.received) == 1


def test_verify_and_create_are_retried_on_429_and_503(server: Scripted) -> None:
    """keyplane refuses those before doing anything: nothing is spent or made twice."""
    server.answer(problem(429, "0"), problem(503, "0"), Answer(200, VERDICT))
    with Keyplane(server.url, API_KEY) as kp:
        assert kp.keys.verify("kp_test_x", scopes=["a:b"]).valid
        server.answer(problem(503, "0"), Answer(201, {**KEY, "key": API_KEY}))
        assert kp.keys.create(name="k").id == "key_1"
    assert [method for method, _, _ in server.received] == ["POST"] * 5


def test_a_retry_after_beyond_the_cap_is_raised_at_once(server: Scripted) -> None:
    server.answer(problem(429, "120"), Answer(200, PAGE))
    with Keyplane(server.url, API_KEY) as kp, pytest.raises(RateLimitedError) as err:
        list(kp.keys.list())
    assert err.value.retry_after == 120
    assert len(server.received) == 1


def test_out_of_quota_without_a_refill_is_not_retried(server: Scripted) -> None:
    server.answer(problem(429, code="USAGE_EXCEEDED"), Answer(200, PAGE))
    with Keyplane(server.url, API_KEY) as kp, pytest.raises(RateLimitedError) as err:
        list(kp.keys.list())
    assert err.value.code == "USAGE_EXCEEDED"
    assert len(server.received) == 1


@pytest.mark.parametrize(
    ("call", "retried"),
    [
        (lambda kp: kp.keys.create(name="k"), False),
        (lambda kp: kp.keys.rotate("key_1"), False),
        (lambda kp: kp.keys.update("key_1", quota={"add": 5}), False),
        (lambda kp: kp.keys.verify("kp_test_x"), False),  # would spend the quota twice
        (lambda kp: kp.keys.verify("kp_test_x", cost=0), True),  # spends nothing
        (lambda kp: kp.keys.get("key_1"), True),
        (lambda kp: kp.keys.delete("key_1"), True),
    ],
)
def test_a_request_that_may_have_arrived_is_resent_only_when_safe(
    server: Scripted, call: Any, retried: bool
) -> None:
    server.answer(Answer(drop=True), Answer(200, {**KEY, **VERDICT}))
    with Keyplane(server.url, API_KEY) as kp:
        if retried:
            call(kp)
        else:
            with pytest.raises(APIConnectionError) as err:
                call(kp)
            assert not isinstance(err.value, APITimeoutError)
    assert len(server.received) == (2 if retried else 1)


def test_a_slow_answer_is_APITimeoutError_after_the_retries_of_a_GET(server: Scripted) -> None:
    server.answer(Answer(200, PAGE, delay=0.5))
    with (
        Keyplane(server.url, API_KEY, timeout=0.1, max_retries=1) as kp,
        pytest.raises(APITimeoutError),
    ):
        list(kp.apps.list())
    time.sleep(0.5)
    assert len(server.received) == 2


def test_a_refused_connection_is_retried_even_for_a_POST() -> None:
    """Refused: the request never left, so sending it again cannot make a second key."""
    port = free_port()
    started: list[Scripted] = []

    def start_late() -> None:
        time.sleep(0.1)  # before the first backoff (at least 0.25 s) ends
        started.append(Scripted(port).answer(Answer(201, {**KEY, "key": API_KEY})))

    thread = threading.Thread(target=start_late)
    thread.start()
    try:
        with Keyplane(f"http://127.0.0.1:{port}", API_KEY) as kp:
            assert kp.keys.create(name="k").id == "key_1"
    finally:
        thread.join()
        for scripted in started:
            scripted.stop()
    assert len(started[0].received) == 1


def test_a_streamed_export_is_retried_before_it_starts(server: Scripted) -> None:
    server.answer(problem(503, "0"), Answer(200, {"id": "evt_1"}))
    with Keyplane(server.url, API_KEY) as kp:
        assert b"".join(kp.audit_events.export(format="jsonl")) == b'{"id": "evt_1"}'
    assert len(server.received) == 2


def test_the_async_client_retries_the_same_way(server: Scripted) -> None:
    async def scenario() -> tuple[bool, str]:
        async with AsyncKeyplane(server.url, API_KEY) as kp:
            server.answer(problem(429, "0"), problem(503), Answer(200, VERDICT))
            verdict = await kp.keys.verify("kp_test_x")
            server.answer(Answer(drop=True), Answer(200, KEY))
            try:
                await kp.keys.create(name="k")
            except APIConnectionError as error:
                return verdict.valid, type(error).__name__
            return verdict.valid, "no error"

    assert run(scenario) == (True, "APIConnectionError")
    assert len(server.received) == 4


def test_only_safe_transport_errors_are_retried() -> None:
    """The policy itself, for errors a loopback server cannot produce on demand."""
    from keyplane_client._retry import RetryPolicy

    policy = RetryPolicy(max_retries=1)
    request = httpx.Request("POST", "http://keyplane.test/v1/keys")
    never_sent = httpx.ConnectTimeout("no connection", request=request)
    maybe_sent = httpx.WriteError("broken pipe", request=request)
    assert policy.after_error(0, never_sent, resendable=False) is not None
    assert policy.after_error(0, maybe_sent, resendable=False) is None
    assert policy.after_error(0, maybe_sent, resendable=True) is not None
    assert policy.after_error(1, never_sent, resendable=True) is None
    delays = [RetryPolicy(max_retries=9)._backoff(n) for n in range(9)]
    assert all(0.25 <= d <= 8.0 for d in delays)
    assert delays[-1] >= 4.0  # capped at max_delay, at least half of it


def test_a_success_that_is_not_the_documented_body_is_UnexpectedResponseError(
    server: Scripted,
) -> None:
    server.answer(Answer(200, {"hello": "proxy"}))
    with Keyplane(server.url, API_KEY) as kp, pytest.raises(UnexpectedResponseError) as err:
        kp.keys.get("key_1")
    assert "GET /v1/keys/key_1 answered 200 with a body that is not a Key" in str(err.value)
    assert err.value.response.status_code == 200


def test_an_error_page_that_is_no_problem_document_is_still_typed(server: Scripted) -> None:
    server.answer(Answer(502, raw=b"<html><h1>502 Bad Gateway</h1></html>"))
    with Keyplane(server.url, API_KEY) as kp, pytest.raises(InternalServerError) as err:
        kp.org.get()
    error = err.value
    assert (error.status, error.title, error.type) == (502, "Bad Gateway", "about:blank")
    assert "<h1>502 Bad Gateway</h1>" in error.detail
    assert error.errors == []
    assert len(server.received) == 1  # only 429 and 503 are retried


def test_a_retry_after_that_is_a_date_counts_as_absent(server: Scripted) -> None:
    server.answer(problem(503, "Wed, 21 Oct 2015 07:28:00 GMT"))
    kp = Keyplane(server.url, API_KEY, max_retries=0)
    with kp, pytest.raises(ServiceUnavailableError) as err:
        kp.org.get()
    assert err.value.retry_after is None


def test_a_client_needs_a_key_and_never_shows_it() -> None:
    with pytest.raises(ValueError, match="api_key is required"):
        Keyplane("http://keyplane.test", "")
    with Keyplane("http://keyplane.test/", API_KEY) as kp:
        assert repr(kp) == "Keyplane(base_url='http://keyplane.test')"
    asynchronous = AsyncKeyplane("http://keyplane.test", API_KEY)
    assert API_KEY not in repr(asynchronous)
    run(asynchronous.close)
