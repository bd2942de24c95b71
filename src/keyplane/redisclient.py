"""A pipelined asyncio Redis connection for the verification hot path: scripts only.

Why not redis.asyncio: measured on this machine (2 cores), one EVALSHA through
redis.asyncio costs ~95 µs of CPU under concurrency (a pooled connection per call, a
``wait_for`` task per read, argument encoding in Python), this ~15 µs: one connection
shared by every request of the event loop, commands written as they come and replies
matched in order (Redis answers a connection's commands in the order it sent them),
parsed by hiredis. On a verification that costs ~200 µs in all, that difference is the
difference between ~45% and ~75% of the in-process limiter's throughput
(bench/verify.py --limits).

What it gives up: only ``EVALSHA``/``EVAL`` with ``AUTH``/``SELECT`` at connect; TCP
(optionally TLS, ``rediss://``) or a unix socket. Everything else keyplane does with Redis
(quota changes, the flush thread's deletes) goes through redis-py.

Failures are redis-py's exception types (``ConnectionError``, ``ResponseError``,
``NoScriptError``), so the caller's failure policy sees one family. A reply overdue by
``timeout`` drops the connection (see ``_Protocol._check``), failing its calls with
ConnectionError. A reply to a call whose caller was cancelled arrives in order and is
dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import NoScriptError, ResponseError


def _pack(args: Sequence[Any]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if isinstance(arg, bytes) else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Protocol(asyncio.Protocol):
    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.watch: asyncio.TimerHandle | None = None
        self.reader = hiredis.Reader(replyError=ResponseError)
        self.waiting: deque[asyncio.Future[Any]] = deque()
        self.transport: asyncio.Transport | None = None
        self.outgoing: list[bytes] = []
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # A stream transport (uvloop's is one without subclassing asyncio.Transport).
        self.transport = cast("asyncio.Transport", transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future = self.waiting.popleft()
            if future.done():  # its caller gave up (a timeout): drop the reply
                continue
            if isinstance(reply, ResponseError):
                error = NoScriptError if str(reply).startswith("NOSCRIPT") else ResponseError
                future.set_exception(error(str(reply)))
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.watch is not None:
            self.watch.cancel()
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(RedisConnectionError("Redis closed the connection"))

    def send(self, args: Sequence[Any]) -> asyncio.Future[Any]:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if not self.waiting:
            self.watch = loop.call_later(self.timeout, self._check, future)
        self.waiting.append(future)
        # Corked: the commands of one turn of the event loop leave in one write (one
        # syscall here, one read in Redis), which under load is most of their cost.
        if not self.outgoing:
            loop.call_soon(self._flush)
        self.outgoing.append(_pack(args))
        return future

    def _check(self, head: asyncio.Future[Any]) -> None:
        """A reply is overdue when the oldest call waiting now was already the oldest one
        ``timeout`` ago: one timer per stretch of progress, not one per call (so a call
        waits at most about twice ``timeout``). A hung connection is dropped, failing
        every call on it; the next call reconnects."""
        self.watch = None
        if not self.waiting:
            return
        if self.waiting[0] is head and self.transport is not None:
            self.transport.abort()
            return
        self.watch = asyncio.get_running_loop().call_later(
            self.timeout, self._check, self.waiting[0]
        )

    def _flush(self) -> None:
        data, self.outgoing = b"".join(self.outgoing), []
        if self.transport is not None and not self.lost:
            self.transport.write(data)


class PipelinedRedis:
    """One lazily (re)connected connection per event loop, for scripts."""

    def __init__(self, url: str, *, connect_timeout: float = 0.5, timeout: float = 0.5) -> None:
        self._timeout = timeout
        options = parse_url(url)  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
        self._path: str | None = options.get("path")
        self._host: str = options.get("host", "localhost")
        self._port: int = int(options.get("port", 6379))
        self._db = int(options.get("db", 0))
        self._username: str | None = options.get("username")
        self._password: str | None = options.get("password")
        self._tls = url.startswith("rediss://")
        self._connect_timeout = connect_timeout
        self._protocol: _Protocol | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None

    async def _connected(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        protocol = self._protocol
        if protocol is not None and not protocol.lost and self._loop is loop:
            return protocol
        if self._connecting is None or self._loop is not loop:
            self.reset()
            self._loop, self._connecting = loop, asyncio.Lock()
        async with self._connecting:
            protocol = self._protocol
            if protocol is not None and not protocol.lost:
                return protocol
            try:
                async with asyncio.timeout(self._connect_timeout):
                    protocol = await self._open(loop)
            except (OSError, TimeoutError) as exc:
                raise RedisConnectionError(f"cannot connect to Redis: {exc!r}") from exc
            self._protocol = protocol
            return protocol

    async def _open(self, loop: asyncio.AbstractEventLoop) -> _Protocol:
        context = ssl.create_default_context() if self._tls else None
        timeout = self._timeout

        def make() -> _Protocol:
            return _Protocol(timeout)

        if self._path is not None:
            _, protocol = await loop.create_unix_connection(make, self._path)
        else:
            _, protocol = await loop.create_connection(make, self._host, self._port, ssl=context)
        setup: list[asyncio.Future[Any]] = []
        if self._password is not None:
            user = (self._username,) if self._username else ()
            setup.append(protocol.send(("AUTH", *user, self._password)))
        if self._db:
            setup.append(protocol.send(("SELECT", self._db)))
        if setup:
            await asyncio.gather(*setup)
        return protocol

    async def evalsha(self, sha: str, script: str, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Runs a script by its SHA1, sending its text once when Redis lacks it."""
        protocol = await self._connected()
        try:
            return await protocol.send(("EVALSHA", sha, len(keys), *keys, *args))
        except NoScriptError:  # a restarted or flushed Redis: EVAL caches it again
            return await protocol.send(("EVAL", script, len(keys), *keys, *args))

    def reset(self) -> None:
        """Drop the connection (after a timeout: it may be hung); the next call reconnects."""
        protocol, self._protocol = self._protocol, None
        if protocol is not None and protocol.transport is not None:
            protocol.transport.abort()

    async def aclose(self) -> None:
        self.reset()


def sha1(script: str) -> str:
    return hashlib.sha1(script.encode(), usedforsecurity=False).hexdigest()
