"""The guard's local verdict cache: positive verdicts of keys without limits, for a while.

Keyed by a fingerprint of the presented key, never the key: BLAKE2b under a random salt
drawn when the cache is made, so what sits in memory (and what a heap dump or a debugger
shows) matches nothing outside this process, and is not the digest keyplane stores. The
fingerprint is joined with the scopes asked and the client address the verdict was for,
because keyplane's answer depends on all three (a scope the key lacks, an IP allowlist).

An entry is dropped when the event stream names its key, app or profile, or its whole
organization; everything is dropped on a ``reset``. Each drop moves ``generation`` on: a
verification sent before a drop and answered after it may describe the key as it was, so
its verdict is not stored (the same guard as keyplane's own cache). Entries also expire
after ``ttl`` seconds, and never outlive the key's ``expires_at``.

``serving`` is off while the cache cannot vouch for its entries (the event stream is not
connected, when the guard subscribes): lookups miss and nothing is stored, so every
request goes to keyplane until the stream is back. Eviction is first in, first out past
``max_entries``: a hit costs no bookkeeping.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable
from typing import Final, NamedTuple

from keyplane_client._verified import VerifiedKey

CacheKey = tuple[bytes, str, str | None]

_SALT_BYTES: Final = 16
_DIGEST_BYTES: Final = 16
# After a notice names an id, verdicts naming it are not stored for this long. Several
# keyplane nodes behind one address hear a change within a second of each other, not at
# once: a verification answered by a node that has not heard it yet, after this guard has,
# would otherwise be cached as it was before the change, until the TTL. Keyplane promises
# a second; two leave room for the stream's own delivery.
QUIET_SECONDS: Final = 2.0


class _Entry(NamedTuple):
    verified: VerifiedKey
    deadline: float  # monotonic seconds


class VerdictCache:
    def __init__(
        self,
        max_entries: int,
        ttl: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if max_entries < 0:
            raise ValueError("cache_size must be 0 (no cache) or more")
        if ttl <= 0:
            raise ValueError("cache_ttl must be more than 0 seconds")
        self.max_entries = max_entries
        self.ttl = ttl
        self.generation = 0
        self.serving = True
        # Keyed BLAKE2b, its key block compressed once: a copy per fingerprint costs less
        # than a keyed construction each time.
        self._mac = hashlib.blake2b(key=secrets.token_bytes(_SALT_BYTES), digest_size=_DIGEST_BYTES)
        self._clock = clock
        self._wall = wall
        self._entries: dict[CacheKey, _Entry] = {}
        # id -> the cache keys of entries that name it, to drop them on a notice.
        self._by_id: dict[str, set[CacheKey]] = {}
        # id -> until when (monotonic) verdicts naming it are not stored (QUIET_SECONDS).
        self._quiet: dict[str, float] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def fingerprint(self, token: str) -> bytes:
        mac = self._mac.copy()
        mac.update(token.encode())
        return mac.digest()

    def get(self, key: CacheKey) -> VerifiedKey | None:
        entry = self._entries.get(key)
        if entry is None or not self.serving:
            return None
        if self._clock() >= entry.deadline:
            self._drop(key)
            return None
        return entry.verified

    def put(
        self,
        key: CacheKey,
        verified: VerifiedKey,
        generation: int,
        *,
        not_after: float | None = None,
    ) -> bool:
        """Stores ``verified`` if nothing was dropped since ``generation`` was read, until
        ``not_after`` (Unix seconds: a token's ``exp``) at the latest."""
        if generation != self.generation or not self.serving or self.max_entries == 0:
            return False
        now = self._clock()
        if self._quiet and any(self._quiet.get(i, 0.0) > now for i in verified.ids()):
            return False
        deadline = now + self.ttl
        ends = [verified.expires_at.timestamp()] if verified.expires_at is not None else []
        if not_after is not None:
            ends.append(not_after)
        if ends:
            deadline = min(deadline, now + min(ends) - self._wall())
        if key in self._entries:
            self._drop(key)
        while len(self._entries) >= self.max_entries:
            self._drop(next(iter(self._entries)))
        self._entries[key] = _Entry(verified, deadline)
        for ident in verified.ids():
            self._by_id.setdefault(ident, set()).add(key)
        return True

    def invalidate(self, ident: str) -> None:
        """Drops every entry naming ``ident`` (a key, app or profile id), and stores no
        verdict naming it for QUIET_SECONDS."""
        self.generation += 1
        now = self._clock()
        if len(self._quiet) > self.max_entries:  # bounded: forget the quiet periods over
            self._quiet = {i: until for i, until in self._quiet.items() if until > now}
        self._quiet[ident] = now + QUIET_SECONDS
        for key in self._by_id.pop(ident, set()).copy():
            self._drop(key)

    def clear(self) -> None:
        self.generation += 1
        self._entries.clear()
        self._by_id.clear()

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        for ident in entry.verified.ids():
            keys = self._by_id.get(ident)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_id[ident]
