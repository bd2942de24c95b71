"""Outbound HTTP: webhook deliveries (the WebhookSender port) and small fetches (GitHub's
secret-scanning keys, ``HttpFetcher``) on httpx, with one set of safety rules.

- Never a redirect (a 3xx is the endpoint's answer, recorded as a failure), never a proxy
  from the environment (a proxy would resolve the name where keyplane cannot check it).
- 10 s for the whole attempt, the response read only as far as its excerpt. httpx's
  timeouts bound each operation (connect, each read, each write); the network backend
  also bounds each by what remains of the attempt, so an endpoint that trickles its
  answer a byte at a time still ends on time.
- Never a link-local or cloud metadata address, nor a private or loopback one when
  ``KEYPLANE_WEBHOOKS_ALLOW_PRIVATE=false`` (domain/webhooks.py ``refusal``). The check runs
  on the addresses DNS answered, and the connection goes to the very address checked: the
  network backend resolves, checks and connects itself, so no second lookup can answer
  differently (DNS rebinding). TLS still verifies the certificate against the host name,
  which httpcore passes to ``start_tls`` apart from the address.
- The DNS lookup counts against the time limit: it runs on a thread of its own, waited
  for no longer than the limit, then the connection gets what remains. getaddrinfo
  cannot be cancelled: a lookup that hangs keeps its (daemon) thread until the system
  resolver gives up, but the attempt ends on time.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Final

import httpcore
import httpx
from httpcore._backends.sync import SyncStream

from keyplane.domain.webhooks import EXCERPT_MAX, TIMEOUT_SECONDS, Outcome, refusal
from keyplane.domain.webhooks import parse_address as _parse

_ERROR_MAX: Final = 200

# getaddrinfo's answers: (family, type, proto, canonname, sockaddr).
AddressInfo = tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[Any, ...]]
Resolver = Callable[[str, int], Sequence[AddressInfo]]

# When the attempt under way on this thread must end (time.monotonic()); None outside one.
_deadline: ContextVar[float | None] = ContextVar("keyplane_webhook_deadline", default=None)


@contextmanager
def _attempt(seconds: float) -> Iterator[None]:
    token = _deadline.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _within(timeout: float | None, expired: type[httpcore.TimeoutException]) -> float | None:
    """httpcore's timeout for one operation, cut to what remains of the attempt."""
    deadline = _deadline.get()
    if deadline is None:
        return timeout
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise expired("the attempt's time limit ran out")
    return remaining if timeout is None else min(timeout, remaining)


class _DeadlineStream(httpcore.NetworkStream):
    """A connection whose every read and write ends with the attempt, at the latest."""

    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _within(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _within(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


def system_resolver(host: str, port: int) -> Sequence[AddressInfo]:
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def resolve(resolver: Resolver, host: str, port: int, timeout: float | None) -> list[AddressInfo]:
    """``resolver``'s answer, waited for at most ``timeout`` seconds (then ConnectTimeout)."""
    answer: list[AddressInfo] = []
    failed: list[Exception] = []

    def lookup() -> None:
        try:
            answer.extend(resolver(host, port))
        except Exception as exc:  # reported to the caller (a name IDNA refuses, too)
            failed.append(exc)

    thread = threading.Thread(target=lookup, name="keyplane-webhook-dns", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise httpcore.ConnectTimeout(f"resolving {host!r} took over {timeout:.1f} s")
    if failed:
        raise httpcore.ConnectError(f"cannot resolve {host!r}: {failed[0]}") from failed[0]
    return answer


class RefusedAddress(httpcore.ConnectError):
    """The host resolved to an address deliveries must not reach."""


class CheckedBackend(httpcore.SyncBackend):
    """httpcore's synchronous backend, resolving and checking before it connects."""

    def __init__(self, *, allow_private: bool, resolver: Resolver = system_resolver) -> None:
        self._allow_private = allow_private
        self._resolver = resolver

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _within(timeout, httpcore.ConnectTimeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        infos = resolve(self._resolver, host, port, timeout)
        # Any refused answer refuses the name: a name that also points at the metadata
        # service is no endpoint, whichever address a retry would pick.
        for info in infos:
            address = str(info[4][0])
            parsed = _parse(address)
            reason = refusal(parsed, allow_private=self._allow_private) if parsed else "unknown"
            if reason is not None:
                raise RefusedAddress(f"{host} resolves to {address}, {reason}: refused")
        last: OSError | None = None
        for family, kind, proto, _, sockaddr in infos:
            # A socket of our own connected to the checked sockaddr: create_connection would
            # look the address up again.
            sock = socket.socket(family, kind, proto)
            try:
                if deadline is not None:  # what the lookup left of the connect timeout
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError("the connect timeout ran out")
                    sock.settimeout(remaining)
                if local_address is not None:
                    sock.bind((local_address, 0))
                sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                last = exc
                continue
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return _DeadlineStream(SyncStream(sock))
        if isinstance(last, TimeoutError):
            raise httpcore.ConnectTimeout(f"cannot connect to {host}: {last}")
        raise httpcore.ConnectError(f"cannot connect to {host}: {last}")


def checked_client(
    *,
    allow_private: bool,
    timeout: float,
    resolver: Resolver = system_resolver,
    ssl_context: ssl.SSLContext | None = None,
) -> httpx.Client:
    """An httpx client under the rules above: no redirect, no proxy from the environment,
    every connection through CheckedBackend."""
    transport = httpx.HTTPTransport(trust_env=False, retries=0)
    # httpx builds its pool without a way to name the network backend; this pool is
    # the one it builds, plus the checking backend (tests/unit/test_outbound.py holds
    # the swap to account: a refused address must fail before any connection).
    transport._pool = httpcore.ConnectionPool(
        ssl_context=ssl_context or httpx.create_ssl_context(trust_env=False),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=CheckedBackend(allow_private=allow_private, resolver=resolver),
    )
    return httpx.Client(
        transport=transport, follow_redirects=False, timeout=timeout, trust_env=False
    )


class FetchFailed(Exception):
    """A GET that did not answer 200 with a body within the limits; the message says why
    (the URL's host and the status or error, nothing the server sent)."""


class HttpFetcher:
    """GETs a small document (GitHub's secret-scanning public keys) under the same rules as
    webhook deliveries: time limit for the whole request, no redirect, no proxy, never a
    link-local or metadata address, and a size cap on what is read."""

    def __init__(
        self,
        *,
        allow_private: bool = True,
        timeout: float = TIMEOUT_SECONDS,
        max_bytes: int = 1024 * 1024,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._timeout = timeout
        self._max_bytes = max_bytes
        self._client = checked_client(
            allow_private=allow_private, timeout=timeout, resolver=resolver, ssl_context=ssl_context
        )

    def get(self, url: str) -> bytes:
        try:
            with (
                _attempt(self._timeout),
                self._client.stream("GET", url, headers={"accept": "application/json"}) as answer,
            ):
                if answer.status_code != 200:
                    raise FetchFailed(f"GET {answer.url.host} answered {answer.status_code}")
                read = b""
                for chunk in answer.iter_bytes():
                    read += chunk
                    if len(read) > self._max_bytes:
                        raise FetchFailed(f"GET {answer.url.host}: over {self._max_bytes} bytes")
                return read
        except httpx.TimeoutException:
            raise FetchFailed(f"GET timed out after {self._timeout:.0f} s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise FetchFailed(_error(exc)) from None

    def close(self) -> None:
        self._client.close()


class HttpWebhookSender:
    """Posts a signed message; answers the Outcome, whatever happened."""

    def __init__(
        self,
        *,
        allow_private: bool,
        timeout: float = TIMEOUT_SECONDS,
        resolver: Resolver = system_resolver,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """``resolver`` and ``ssl_context`` are for tests (a name of their own, a CA of
        their own); the context defaults to the system's trust store, verifying the
        certificate and its host name."""
        self._timeout = timeout
        self._client = checked_client(
            allow_private=allow_private, timeout=timeout, resolver=resolver, ssl_context=ssl_context
        )

    def send(self, url: str, headers: Mapping[str, str], body: bytes) -> Outcome:
        started = time.monotonic()
        try:
            with (
                _attempt(self._timeout),
                self._client.stream("POST", url, headers=dict(headers), content=body) as response,
            ):
                excerpt = self._excerpt(response, started)
                return Outcome(response.status_code, _ms(started), excerpt)
        except httpx.TimeoutException:
            return Outcome(None, _ms(started), error=f"timed out after {self._timeout:.0f} s")
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            return Outcome(None, _ms(started), error=_error(exc))

    def _excerpt(self, response: httpx.Response, started: float) -> str:
        """The start of the body, read no further than the excerpt needs or the time limit
        (the status is the answer: a body the limit cuts short is kept as far as read)."""
        read = b""
        try:
            for chunk in response.iter_bytes():
                read += chunk
                if len(read) >= EXCERPT_MAX or time.monotonic() - started > self._timeout:
                    break
        except httpx.TimeoutException:
            pass
        return read[:EXCERPT_MAX].decode("utf-8", errors="replace")

    def close(self) -> None:
        self._client.close()


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _error(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text[:_ERROR_MAX]
