"""The invalidation event stream of one process: what ``GET /v1/events/stream`` sends.

Every committed change that affects a cached verdict reaches this process's KeyCache as an
invalidation notice (domain/invalidation.py): on SQLite from the store when it commits, on
PostgreSQL from the listener, which hears every node's notices, this one's included, in
commit order. The same notices feed ``InvalidationEvents`` (app.py wires both), so a
client such as the SDK's guard can keep verdicts in its own cache and drop them within a
second of a change made on any node.

What a subscriber receives: the notices of its own organization, as ids (``key``, ``app``,
``profile``, ``org`` and the id), never a secret or a digest; ``reset`` when it must drop
everything; ``ready`` once its replay is done, carrying its position.

Event ids are ``<epoch>-<seq>``: the epoch is drawn when the process starts, so an id only
means something to the process that gave it. A bounded ring buffer keeps the last events so
a client reconnecting with ``Last-Event-ID`` gets what it missed; a client that cannot be
resumed (another epoch: a restart or another node; an id that fell out of the buffer; an
id from before a gap, when this process's own listener lost its connection and may have
missed notices) gets a ``reset``. The sequence is one counter for the process, so a
subscriber can tell how many changes the node saw in all, never which or whose.

Publishing comes from any thread (the listener's, the threadpool's) and never blocks: each
subscriber has a bounded queue; one that falls behind by more than it holds is sent a
``reset`` and closed (its client reconnects and starts afresh) rather than growing memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from keyplane.domain.invalidation import KINDS, parsed

Name = Literal["invalidate", "reset", "ready"]

BUFFER_EVENTS: Final = 4096
# Notices that change no verdict a client may cache: the token signing keys (OAuth access
# tokens are verified by keyplane, or by a client against the JWKS it serves).
NOT_VERDICTS: Final = frozenset({"signing"})
QUEUE_EVENTS: Final = 1024


@dataclass(frozen=True, slots=True)
class Event:
    seq: int
    name: Name
    # None: meant for every subscriber (a reset).
    org_id: str | None
    kind: str = ""
    ident: str = ""
    reason: str = ""


class Subscription:
    """One subscriber's queue, read on its event loop, filled from any thread."""

    def __init__(
        self, hub: InvalidationEvents, org_id: str, loop: asyncio.AbstractEventLoop, limit: int
    ) -> None:
        self.org_id = org_id
        self._hub = hub
        self._loop = loop
        self._limit = limit
        self._queue: deque[Event] = deque()
        self._ready = asyncio.Event()
        self.overflowed = False

    def push(self, event: Event) -> None:
        """Under the hub's lock. Past the limit, nothing more is queued: the reader sends a
        reset and ends the stream."""
        if self.overflowed:
            return
        if len(self._queue) >= self._limit:
            self.overflowed = True
            self._queue.clear()
        else:
            self._queue.append(event)
        with contextlib.suppress(RuntimeError):  # a closed loop: the stream is gone
            self._loop.call_soon_threadsafe(self._ready.set)

    async def next(self, timeout: float) -> list[Event] | None:
        """The events queued since the last call; [] after ``timeout`` seconds without any
        (time for a heartbeat); None once overflowed."""
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            return []
        with self._hub.lock:
            self._ready.clear()
            if self.overflowed:
                return None
            events = list(self._queue)
            self._queue.clear()
        return events

    def close(self) -> None:
        self._hub.unsubscribe(self)


class InvalidationEvents:
    """The InvalidationFeed (domain/ports.py) behind the event stream."""

    def __init__(
        self,
        *,
        buffer: int = BUFFER_EVENTS,
        queue: int = QUEUE_EVENTS,
        epoch: str | None = None,
    ) -> None:
        self.epoch = epoch or secrets.token_hex(6)
        self.lock = threading.Lock()
        self._buffer: deque[Event] = deque(maxlen=buffer)
        self._queue = queue
        self._seq = 0
        self._subscribers: set[Subscription] = set()

    def event_id(self, seq: int) -> str:
        return f"{self.epoch}-{seq}"

    # -- the feed ------------------------------------------------------------------------

    def published(self, notices: Sequence[str]) -> None:
        with self.lock:
            for text in notices:
                org_id, kind, ident = parsed(text)
                if kind in NOT_VERDICTS:
                    continue
                if org_id is None and kind == "org":
                    org_id = ident  # an organization's own notice names it
                if org_id is None or kind not in KINDS or not ident:
                    # Whose change it is, or what it names, is not known: everyone forgets
                    # everything, and learns no id of anyone else's.
                    self._add("reset", None, reason="unattributed")
                else:
                    self._add("invalidate", org_id, kind, ident)

    def gap(self) -> None:
        with self.lock:
            self._add("reset", None, reason="gap")

    def _add(
        self, name: Name, org_id: str | None, kind: str = "", ident: str = "", reason: str = ""
    ) -> None:
        self._seq += 1
        event = Event(self._seq, name, org_id, kind, ident, reason)
        self._buffer.append(event)
        for subscriber in self._subscribers:
            if org_id is None or subscriber.org_id == org_id:
                subscriber.push(event)

    # -- the subscribers -----------------------------------------------------------------

    def subscribe(self, org_id: str, last_event_id: str | None) -> tuple[Subscription, list[Event]]:
        """A subscription for ``org_id`` on the running event loop, and what to send first:
        the events missed since ``last_event_id`` or a reset, then ``ready``. Atomic under
        the lock, so no event falls between the replay and the queue."""
        subscription = Subscription(self, org_id, asyncio.get_running_loop(), self._queue)
        with self.lock:
            first = self._replay(org_id, last_event_id)
            first.append(Event(self._seq, "ready", org_id))
            self._subscribers.add(subscription)
        return subscription, first

    def unsubscribe(self, subscription: Subscription) -> None:
        with self.lock:
            self._subscribers.discard(subscription)

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def _replay(self, org_id: str, last_event_id: str | None) -> list[Event]:
        if last_event_id is None:
            return []  # a new client: it has nothing from this stream to keep
        epoch, _, number = last_event_id.strip().rpartition("-")
        seq = int(number) if number.isdigit() and len(number) <= 18 else -1
        oldest = self._buffer[0].seq if self._buffer else self._seq + 1
        if epoch != self.epoch or seq < 0 or seq > self._seq:
            return [self._reset(org_id, "unknown-position")]
        if seq < oldest - 1:
            return [self._reset(org_id, "too-old")]
        missed = [e for e in self._buffer if e.seq > seq]
        if any(e.name == "reset" for e in missed):
            # A gap (or an unattributed change) since then: the reset says it all.
            return [self._reset(org_id, "gap")]
        return [e for e in missed if e.org_id == org_id]

    def reset_here(self, org_id: str, reason: str) -> Event:
        """A reset for one subscriber at the current position (one that fell behind)."""
        with self.lock:
            return self._reset(org_id, reason)

    def _reset(self, org_id: str, reason: str) -> Event:
        # Not buffered: it is this subscriber's alone, at the current position.
        return Event(self._seq, "reset", org_id, reason=reason)
