"""In-process implementations: the single-node default.

``InProcessKeyCache`` keeps verification records by digest with secondary indexes so an
invalidation by key, app, profile or organization touches only the entries it concerns.
``BufferedUsageRecorder`` takes last-used times and use counts off the request path and
writes them in one batch per interval (so at most one write per key per interval).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from keyplane.domain.verification import CachedKey
from keyplane.jobs import Periodic

log = logging.getLogger(__name__)


class InProcessKeyCache:
    """A KeyCache in this process's memory.

    Reads are plain dict lookups without a lock (atomic under the GIL); writes and
    invalidations take one lock so the indexes stay consistent with the entries.
    """

    def __init__(self, max_entries: int = 100_000, max_missing: int = 10_000) -> None:
        self._entries: dict[str, CachedKey] = {}
        self._missing: OrderedDict[str, None] = OrderedDict()
        self._by_key: dict[str, str] = {}
        self._by_app: dict[str, set[str]] = {}
        self._by_profile: dict[str, set[str]] = {}
        self._by_org: dict[str, set[str]] = {}
        self._max_entries = max_entries
        self._max_missing = max_missing
        self._generation = 0
        self._lock = threading.Lock()

    def get(self, digest: str) -> CachedKey | None:
        return self._entries.get(digest)

    def known_missing(self, digest: str) -> bool:
        return digest in self._missing

    def generation(self) -> int:
        return self._generation

    def put(self, digest: str, entry: CachedKey, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if digest in self._entries:
                self._drop(digest)  # a refill of the same key: clear its old index entries
            elif len(self._entries) >= self._max_entries:
                self._drop(next(iter(self._entries)))
            self._entries[digest] = entry
            self._by_key[entry.key_id] = digest
            self._by_org.setdefault(entry.org_id, set()).add(digest)
            if entry.app_id:
                self._by_app.setdefault(entry.app_id, set()).add(digest)
            if entry.profile_id:
                self._by_profile.setdefault(entry.profile_id, set()).add(digest)

    def put_missing(self, digest: str, generation: int) -> None:
        with self._lock:
            if generation != self._generation:
                return
            self._drop(digest)  # a revalidated record whose key is gone
            self._missing[digest] = None
            if len(self._missing) > self._max_missing:
                self._missing.popitem(last=False)

    def invalidate_key(self, key_id: str) -> None:
        with self._lock:
            self._generation += 1
            digest = self._by_key.get(key_id)
            if digest is not None:
                self._drop(digest)

    def invalidate_app(self, app_id: str) -> None:
        self._invalidate_group(self._by_app, app_id)

    def invalidate_profile(self, profile_id: str) -> None:
        self._invalidate_group(self._by_profile, profile_id)

    def invalidate_org(self, org_id: str) -> None:
        self._invalidate_group(self._by_org, org_id)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._entries.clear()
            self._missing.clear()
            for index in (self._by_key, self._by_app, self._by_profile, self._by_org):
                index.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _invalidate_group(self, index: dict[str, set[str]], ident: str) -> None:
        with self._lock:
            self._generation += 1
            for digest in list(index.get(ident, ())):
                self._drop(digest)

    def _drop(self, digest: str) -> None:
        entry = self._entries.pop(digest, None)
        if entry is None:
            return
        self._by_key.pop(entry.key_id, None)
        _discard(self._by_org, entry.org_id, digest)
        if entry.app_id:
            _discard(self._by_app, entry.app_id, digest)
        if entry.profile_id:
            _discard(self._by_profile, entry.profile_id, digest)


def _discard(index: dict[str, set[str]], ident: str, digest: str) -> None:
    members = index.get(ident)
    if members is not None:
        members.discard(digest)
        if not members:
            del index[ident]


class BufferedUsageRecorder:
    """Collects last-used times and use counts and hands them to ``write`` in batches from
    one thread. A lost batch loses its counts too: they are advisory, like the times."""

    def __init__(
        self,
        write: Callable[[Mapping[str, datetime], Mapping[str, int]], None],
        interval: float = 1.0,
    ) -> None:
        self._write = write
        # key id -> [latest use, uses]: one mutable entry, so a repeated touch is one lookup
        # and no dict write (measured ~25 ns cheaper than a second dict for the counts).
        self._pending: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._flusher = Periodic("keyplane-usage", self.flush, interval)

    def touch(self, key_id: str, at: datetime) -> None:
        # An uncontended lock costs tens of nanoseconds; without it a touch racing the batch
        # swap could land in the batch being written and be lost.
        with self._lock:
            entry = self._pending.get(key_id)
            if entry is None:
                self._pending[key_id] = [at, 1]
            else:
                entry[1] += 1
                if at > entry[0]:  # noqa: PLR1730 - max() is a call: slower on the hot path
                    entry[0] = at

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        used = {key_id: entry[0] for key_id, entry in batch.items()}
        counts = {key_id: entry[1] for key_id, entry in batch.items()}
        try:
            self._write(used, counts)
        except Exception:
            # Last-used times are advisory: losing one batch must never take verification down.
            log.exception("could not record last-used times for %d keys", len(batch))

    def start(self) -> None:
        self._flusher.start()

    def stop(self) -> None:
        self._flusher.stop()
        self.flush()


class InProcessAttemptLimiter:
    """Per-subject failure counting with exponential back-off after a few free attempts.

    A subject is whatever the caller counts by: an account and address pair, an account, an
    address (``services/signin.py`` uses all three, with different allowances). After
    ``free`` failures each further attempt must wait 2^(n - free) seconds from the last
    failure, never more than ``cap`` (15 minutes by default: without a cap the wait of a
    shared subject would grow past any use, which is itself a lockout). A quiet
    ``forget_after`` seconds (an hour, longer than the cap so a patient guesser keeps the
    count) wipes the slate. Bounded in memory: past ``max_subjects`` the oldest subject is
    forgotten, which an attacker rotating subjects could exploit only to regain a few free
    attempts (the account's own ceiling still holds).
    """

    def __init__(
        self,
        free: int = 5,
        cap: float = 900.0,
        forget_after: float = 3600.0,
        max_subjects: int = 100_000,
    ) -> None:
        if forget_after < cap:
            raise ValueError("forget_after must be at least cap, or waiting resets the count")
        self._free = free
        self._cap = cap
        self._forget_after = forget_after
        self._max_subjects = max_subjects
        self._failures: OrderedDict[str, tuple[int, float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, subjects: list[str], now: float) -> float:
        wait = 0.0
        with self._lock:
            for subject in subjects:
                count, last = self._failures.get(subject, (0, 0.0))
                if now - last > self._forget_after:
                    continue
                if count >= self._free:
                    delay = min(2.0 ** min(count - self._free, 64), self._cap)
                    wait = max(wait, last + delay - now)
        return wait

    def failed(self, subjects: list[str], now: float) -> None:
        with self._lock:
            for subject in subjects:
                count, last = self._failures.pop(subject, (0, 0.0))
                if now - last > self._forget_after:
                    count = 0
                self._failures[subject] = (count + 1, now)
            while len(self._failures) > self._max_subjects:
                self._failures.popitem(last=False)

    def succeeded(self, subjects: list[str]) -> None:
        with self._lock:
            for subject in subjects:
                self._failures.pop(subject, None)
