"""The PostgreSQL invalidation listener: other nodes' changes reach this process's cache.

One connection of its own, in autocommit, LISTENing on the channel the stores NOTIFY in
(storage/invalidations.py), on a thread of its own; the hot path never waits for it.

A listener can miss notices: while its connection is down, PostgreSQL keeps nothing for
it. So the whole cache is dropped when the connection is lost and again once it is back,
after LISTEN (in that order: a change committed after LISTEN is delivered; a record filled
before the drop is gone; a fill that read before the drop and stores after it is refused by
the cache's generation guard). Reconnection backs off from 0.1 s to 5 s. A connection that
dies silently (a network partition, no FIN) is found by TCP keepalives and by a ``SELECT 1``
every few seconds of silence. The TTL revalidation (services/verifying.py) is the last net.

The same notices, and the same drops, go to ``feed`` (the event stream, services/events.py):
its subscribers learn of every node's changes, this one's included, in commit order, and
are told to drop everything when this listener may have missed some.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Final

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy.engine import make_url

from keyplane.domain.invalidation import apply, unstamped
from keyplane.domain.ports import InvalidationFeed, KeyCache, Metrics
from keyplane.storage.engine import normalise_url
from keyplane.storage.invalidations import CHANNEL

log = logging.getLogger(__name__)

_WAIT_SECONDS: Final = 0.25
# libpq parameters: TCP keepalives find a peer that vanished without closing.
_KEEPALIVES: Final = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "connect_timeout": "5",
}


def libpq_url(url: str) -> str:
    """The SQLAlchemy URL as psycopg takes it (no ``+psycopg`` driver suffix)."""
    return (
        make_url(normalise_url(url))
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


class PostgresInvalidationListener:
    """An InvalidationListener on PostgreSQL LISTEN/NOTIFY."""

    def __init__(
        self,
        url: str,
        cache: KeyCache,
        metrics: Metrics,
        *,
        ping_seconds: float = 5.0,
        backoff: tuple[float, float] = (0.1, 5.0),
        signing: Callable[[], None] | None = None,
        feed: InvalidationFeed | None = None,
    ) -> None:
        self._conninfo = make_conninfo(libpq_url(url), **_KEEPALIVES)
        self._cache = cache
        # Reloads the token signing keys (a rotation's notice, or a lost connection).
        self._signing = signing
        self._feed = feed
        self._metrics = metrics
        self._ping_seconds = ping_seconds
        self._backoff = backoff
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None
        # Set while LISTEN is active (the tests, and a startup that wants to wait for it).
        self.listening = threading.Event()
        self.connects = 0
        self.received = 0

    @property
    def pid(self) -> int | None:
        """The listening connection's server process id, None while disconnected."""
        return self._pid

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._run, name="keyplane-invalidations", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping.is_set():
            try:
                self._listen()
                delay = self._backoff[0]
            except (psycopg.Error, OSError) as exc:
                self._lost()
                log.warning(
                    "cache invalidation listener: %s; dropped the key cache, reconnecting in "
                    "%.1f s",
                    str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__,
                    delay,
                )
                self._stopping.wait(delay)
                delay = min(delay * 2, self._backoff[1])

    def _listen(self) -> None:
        with psycopg.connect(self._conninfo, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            self._pid = conn.info.backend_pid
            # After LISTEN, never before: see the module's docstring.
            self._clear()
            self.connects += 1
            self.listening.set()
            if self.connects > 1:
                log.info("cache invalidation listener reconnected; dropped the key cache")
            else:
                log.info("cache invalidation listener: LISTEN %s", CHANNEL)
            quiet_since = time.monotonic()
            while not self._stopping.is_set():
                # Short waits, so that stop() is prompt.
                for message in conn.notifies(timeout=_WAIT_SECONDS):
                    text, sent_at = unstamped(message.payload)
                    apply(self._cache, text, self._signing)
                    if self._feed is not None:
                        self._feed.published((text,))
                    self.received += 1
                    self._metrics.invalidation_received(
                        None if sent_at is None else time.time() - sent_at
                    )
                    quiet_since = time.monotonic()
                if time.monotonic() - quiet_since >= self._ping_seconds:
                    conn.execute("SELECT 1")  # a silent death ends here, with an error
                    quiet_since = time.monotonic()
            self._lost()

    def _lost(self) -> None:
        self.listening.clear()
        self._pid = None
        self._clear()

    def _clear(self) -> None:
        self._cache.clear()
        if self._signing is not None:
            self._signing()
        if self._feed is not None:
            self._feed.gap()
