"""The guard's subscription to keyplane's event stream (``GET /v1/events/stream``).

A background task on the application's event loop reads the Server-Sent Events and drops
cached verdicts as keyplane names what changed: an ``invalidate`` drops the entries of a
key, app or profile (an organization's: everything), a ``reset`` drops everything.

The cache serves only while the stream is connected and has said ``ready``: from the
moment the connection is lost until the next ``ready``, every request goes to keyplane.
The reconnection sends ``Last-Event-ID``: keyplane replays what was missed (the entries
are kept and serve again) or, when it cannot (another node answered, or its own buffer or
listener lost track), sends ``reset``. A first connection, with no position to resume
from, drops everything the cache holds. Reconnections back off from 0.1 s to 10 s, with
jitter; a stream keyplane ends cleanly (it does every few minutes) is reopened at once.

A connection that dies without a word is found by the read timeout: keyplane sends a
comment every 15 s, so 35 s of silence means it is gone. Until then the cache serves;
``cache_ttl`` bounds how long any entry serves whatever happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import httpx

from keyplane_client._cache import VerdictCache

if TYPE_CHECKING:
    from keyplane_client._client import AsyncKeyplane

log = logging.getLogger("keyplane_client.guard")

PATH: Final = "/v1/events/stream"
READ_TIMEOUT: Final = 35.0
BACKOFF: Final = (0.1, 10.0)


@dataclass(frozen=True, slots=True)
class ServerEvent:
    id: str | None
    event: str
    data: str


async def parse(lines: AsyncIterator[str]) -> AsyncIterator[ServerEvent]:
    """Server-Sent Events (the WHATWG HTML "event stream interpretation"): fields up to a
    blank line, comments skipped, ``data`` lines joined by newlines."""
    event_id: str | None = None
    name = ""
    data: list[str] = []
    async for line in lines:
        if not line:
            if data:
                yield ServerEvent(event_id, name or "message", "\n".join(data))
            name, data = "", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id" and "\x00" not in value:
            event_id = value


class EventSubscription:
    """Keeps ``cache`` honest by following keyplane's event stream, from ``start()`` (on a
    running event loop) until ``aclose()``."""

    def __init__(
        self,
        client: AsyncKeyplane,
        cache: VerdictCache,
        *,
        read_timeout: float = READ_TIMEOUT,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        self._client = client
        self._cache = cache
        self._read_timeout = read_timeout
        self._backoff = backoff
        self._task: asyncio.Task[None] | None = None
        self.last_event_id: str | None = None
        # Set while connected and ready (the cache serves); for tests and health checks.
        self.ready = asyncio.Event()
        self.connects = 0
        self.resets = 0
        cache.serving = False

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name="keyplane-events")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._suspend()

    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            try:
                ended_cleanly = await self._follow()
            except (httpx.HTTPError, ValueError) as exc:
                log.warning(
                    "keyplane event stream lost (%s); verifying every request until it is back",
                    type(exc).__name__,
                )
                ended_cleanly = False
            finally:
                self._suspend()
            if ended_cleanly:
                delay = self._backoff[0]
                continue
            await asyncio.sleep(delay * (0.5 + random.random() / 2))  # noqa: S311 (jitter)
            delay = min(delay * 2, self._backoff[1])

    async def _follow(self) -> bool:
        """One connection, until it ends: True when keyplane ended it, False when it
        refused it."""
        headers = {"Accept": "text/event-stream"}
        resuming = self.last_event_id is not None
        if self.last_event_id is not None:
            headers["Last-Event-ID"] = self.last_event_id
        timeout = httpx.Timeout(10.0, read=self._read_timeout)
        http = self._client._http
        async with http.stream("GET", PATH, headers=headers, timeout=timeout) as response:
            if response.status_code != 200:
                await response.aread()
                log.warning(
                    "keyplane refused the event stream (%s): the guard's key needs the "
                    "keys:verify scope; verifying every request meanwhile",
                    response.status_code,
                )
                return False
            self.connects += 1
            async for event in parse(response.aiter_lines()):
                if event.id is not None:
                    self.last_event_id = event.id
                self._apply(event, resuming)
        return True

    def _apply(self, event: ServerEvent, resuming: bool) -> None:
        cache = self._cache
        if event.event == "invalidate":
            notice = json.loads(event.data)
            kind, ident = notice.get("kind"), notice.get("id")
            if kind in ("key", "app", "profile") and isinstance(ident, str):
                cache.invalidate(ident)
            else:  # an organization's change, or a kind this version does not know
                cache.clear()
        elif event.event == "reset":
            self.resets += 1
            cache.clear()
        elif event.event == "ready":
            if not resuming:
                cache.clear()  # nothing says what changed before this stream began
            cache.serving = True
            self.ready.set()

    def _suspend(self) -> None:
        self._cache.serving = False
        self.ready.clear()
