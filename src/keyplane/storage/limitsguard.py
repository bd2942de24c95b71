"""The LimitsGuard on PostgreSQL: how many processes keep rate limits in their memory.

Each such process (every `keyplane serve` process, its `--workers` and their parent
included, on PostgreSQL without KEYPLANE_REDIS_URL) holds a session-level SHARED advisory
lock on ``HOLDERS`` over a connection of its own, for as long as it runs. The granted
holders in ``pg_locks`` are the live processes: the server drops a lock with its
connection, so a node killed with SIGKILL stops counting as soon as its connection is
gone (at once for a dead process; within the TCP keepalive for a vanished machine).

The race: two nodes start with no limits, then one gets added. The check and the change
must not interleave (node B takes its lock and finds no limit while node A, having counted
one holder, commits a limit). So both sides take ``GATE``, an exclusive advisory lock: a
starting process around "take the shared lock, look for limits", a change giving
something a limit or quota around "count the holders, write" (transaction-level, released
by its COMMIT). Whichever comes second sees the other: the starter sees the committed limit
and refuses to start; the change sees two holders and is refused (409). Changes giving
limits are rare (policy, not traffic), so waiting on one lock costs nothing noticeable.

What is given up: if this process's lock connection is lost (the database restarted),
the lock is retaken on reconnect, but by then another process may have started or a limit
been added; that is logged as an error, not refused (this process is already serving).
"""

from __future__ import annotations

import logging
import threading
from typing import Final

import psycopg
from psycopg.conninfo import make_conninfo
from sqlalchemy import text

from keyplane.domain.errors import LimitsNeedRedis
from keyplane.domain.ports import Transaction
from keyplane.storage.listener import libpq_url
from keyplane.storage.store import SqlTransaction

log = logging.getLogger(__name__)

# pg_advisory_lock(int4, int4) keys: a namespace ("kp") and one number per lock; the
# two-key form shows up in pg_locks as classid, objid with objsubid 2.
NAMESPACE: Final = 0x6B70
HOLDERS: Final = 1
GATE: Final = 2

# NAMESPACE (0x6B70 = 27504) and HOLDERS, written out (a query is no f-string).
_HOLDER_COUNT: Final = """
    SELECT count(*) FROM pg_locks
    WHERE locktype = 'advisory' AND granted AND mode = 'ShareLock'
      AND classid = 27504 AND objid = 1 AND objsubid = 2
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""
_LIMITS_EXIST: Final = """
    SELECT EXISTS (SELECT 1 FROM api_keys
                   WHERE quota_remaining IS NOT NULL OR ratelimits <> '[]'::jsonb)
        OR EXISTS (SELECT 1 FROM apps WHERE ratelimits <> '[]'::jsonb)
        OR EXISTS (SELECT 1 FROM organizations WHERE ratelimits <> '[]'::jsonb)
"""
_KEEPALIVES: Final = {
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "3",
    "connect_timeout": "5",
}


class PostgresLimitsGuard:
    """A LimitsGuard counting the processes that hold a shared advisory lock."""

    def __init__(self, url: str, *, ping_seconds: float = 5.0) -> None:
        self._conninfo = make_conninfo(libpq_url(url), **_KEEPALIVES)
        self._ping_seconds = ping_seconds
        self._conn: psycopg.Connection[tuple[int]] | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def join(self, processes: int = 1) -> None:
        with self._lock:
            if self._conn is not None:
                return
            self._conn = self._take(processes, refuse=True)
        self._stopping.clear()
        self._thread = threading.Thread(target=self._keep, name="keyplane-limits", daemon=True)
        self._thread.start()

    def leave(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        with self._lock:
            if self._conn is not None:
                self._conn.close()  # the session's lock goes with it
                self._conn = None

    def limits_added(self, tx: Transaction, field: str) -> None:
        if not isinstance(tx, SqlTransaction):  # pragma: no cover - wiring mistake
            raise TypeError("PostgresLimitsGuard needs a SqlTransaction")
        conn = tx.connection
        conn.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :gate)"), {"ns": NAMESPACE, "gate": GATE}
        )
        holders = int(conn.execute(text(_HOLDER_COUNT)).scalar_one())
        if holders > 1:
            raise LimitsNeedRedis(field, holders)

    def _take(self, processes: int, *, refuse: bool) -> psycopg.Connection[tuple[int]]:
        """A new connection holding the shared lock; with ``refuse``, none when that would
        make limits inexact (LimitsNeedRedis)."""
        conn: psycopg.Connection[tuple[int]] = psycopg.connect(self._conninfo, autocommit=True)
        try:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (NAMESPACE, GATE))
            try:
                conn.execute("SELECT pg_advisory_lock_shared(%s, %s)", (NAMESPACE, HOLDERS))
                row = conn.execute(_HOLDER_COUNT).fetchone()
                others = (int(row[0]) if row else 1) - 1
                if others > 0 or processes > 1:
                    exists = conn.execute(_LIMITS_EXIST).fetchone()
                    if exists and exists[0]:
                        total = others + processes
                        if refuse:
                            raise LimitsNeedRedis("ratelimits", total)
                        log.error(
                            "rate limits and quotas are inexact: %d keyplane processes keep "
                            "them in memory on this database (after a lost connection to "
                            "it). Set KEYPLANE_REDIS_URL on every node.",
                            total,
                        )
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s, %s)", (NAMESPACE, GATE))
        except BaseException:
            conn.close()
            raise
        return conn

    def _keep(self) -> None:
        """Pings the lock's connection; retakes the lock on a new one when it is lost."""
        delay = 0.1
        while not self._stopping.wait(self._ping_seconds if delay <= 0.1 else delay):
            try:
                with self._lock:
                    if self._conn is None:
                        return
                    if self._conn.closed or self._conn.broken:
                        self._conn = self._take(1, refuse=False)
                        log.info("limits guard: reconnected; shared lock retaken")
                    else:
                        self._conn.execute("SELECT 1")
                delay = 0.1
            except (psycopg.Error, OSError) as exc:
                log.warning("limits guard: lost its connection (%s); retrying", type(exc).__name__)
                with self._lock:
                    if self._conn is not None and not self._conn.closed:
                        self._conn.close()
                delay = min(max(delay * 2, 0.2), 5.0)
