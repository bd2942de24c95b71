"""In-process usage counting: the single-node (and per-node) default.

``BufferedUsageCounter`` adds one to a dict entry under a lock on the request path and
hands the totals to ``write`` (``SqlUsageRepository.add``) from one background thread,
once per interval. Retention is a job (``services/analytics.py``, ``UsageRetentionJob``).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from keyplane.domain.ports import Clock
from keyplane.domain.usage import UsageTally
from keyplane.domain.verification import CachedKey
from keyplane.jobs import Periodic

log = logging.getLogger(__name__)

# (organization, key record or None, outcome, minute since the epoch)
_Slot = tuple[str, CachedKey | None, str, int]
_MINUTE = timedelta(minutes=1)
_EPOCH = datetime.fromtimestamp(0, UTC)


class BufferedUsageCounter:
    """Counts per key, minute and outcome in memory; writes them in batches from a thread.

    A failed write keeps its counts for the next attempt, up to ``max_pending`` distinct
    slots: past that, during a long database outage, the oldest batch is dropped (and
    logged) rather than growing without bound. Verification never sees the failure.
    """

    def __init__(
        self,
        write: Callable[[Sequence[UsageTally]], None],
        *,
        clock: Clock,
        interval: float = 1.0,
        max_pending: int = 200_000,
    ) -> None:
        self._write = write
        self._clock = clock
        self._max_pending = max_pending
        self._pending: dict[_Slot, int] = {}
        self._window = (_EPOCH, _EPOCH, 0)  # [start, end) of the last minute seen, and its number
        self._lock = threading.Lock()
        self._flusher = Periodic("keyplane-usage-counts", self.flush, interval)

    def count(self, org_id: str, key: CachedKey | None, outcome: str, at: datetime) -> None:
        # The minute is taken from the last one seen when ``at`` falls in it (two datetime
        # comparisons against timestamp()'s ~0.3 µs); the window is one tuple, so a thread
        # reads a consistent one. The record itself is the slot's key (hashed by identity:
        # cheaper than its id and app); the flush reads the ids from it.
        window = self._window
        if window[0] <= at < window[1]:
            minute = window[2]
        else:
            minute = int(at.timestamp()) // 60
            start = datetime.fromtimestamp(minute * 60, UTC)
            self._window = (start, start + _MINUTE, minute)
        slot = (org_id, key, outcome, minute)
        with self._lock:
            self._pending[slot] = self._pending.get(slot, 0) + 1

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            self._write(_tallies(batch))
        except Exception:
            self._keep(batch)

    def _keep(self, batch: dict[_Slot, int]) -> None:
        with self._lock:
            if len(self._pending) + len(batch) > self._max_pending:
                log.exception("could not record usage; dropped %d counts", sum(batch.values()))
                return
            for slot, n in batch.items():
                self._pending[slot] = self._pending.get(slot, 0) + n
        log.exception("could not record usage; %d counts kept for the next attempt", len(batch))

    def start(self) -> None:
        self._flusher.start()

    def stop(self) -> None:
        self._flusher.stop()
        self.flush()


class NullUsageCounter:
    """Counts nothing (``KEYPLANE_USAGE_COUNTING=false``): for the benchmark's baseline and
    for deployments that do not want analytics."""

    def count(self, org_id: str, key: CachedKey | None, outcome: str, at: datetime) -> None:
        pass

    def start(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def stop(self) -> None:
        pass


def _tallies(batch: dict[_Slot, int]) -> list[UsageTally]:
    return [
        UsageTally(
            org_id=org_id,
            key_id=key.key_id if key is not None else None,
            app_id=key.app_id if key is not None else None,
            outcome=outcome,
            minute=datetime.fromtimestamp(minute * 60, UTC),
            count=n,
        )
        for (org_id, key, outcome, minute), n in batch.items()
    ]
