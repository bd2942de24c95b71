"""Verification, the hot path: may this presented key do these things?

On a warm process the answer comes from the KeyCache; the store is read only on the first
sight of a digest (and a digest known not to exist is remembered too, so a flood of
well-formed but unknown keys does not become a flood of queries).

Revalidation, the last safety net behind invalidation notices: a record is read again
from the store once ``ttl`` has passed since it was loaded. The request that finds it stale
is answered from it, and the reload runs in the background (``background``, a thread
pool in app.py), so no verification ever waits for the database because of the TTL. How
stale can an answer be? When every notice arrives (the rule), a change shows within the
notice's delivery (milliseconds, measured in bench/revocation.py). When one is missed
without the listener noticing (it drops the whole cache whenever its connection is lost
or back), a record is answered unchecked for at most ``ttl`` after it was loaded, and then
for the requests that arrive while its reload runs (one database read; while the database
is unreachable the listener is down too, and its loss already dropped the cache).
Served-then-refreshed costs one extra answer from the old record per key and TTL, and
spares the hot path any wait: blocking on the reload would put a database round trip into
every key's verification every 30 s, and a slow database into its latency.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

from keyplane.domain.errors import IpForbidden, LimitExceeded, StorageUnavailable, Unauthenticated
from keyplane.domain.models import ApiKey, effective_scopes
from keyplane.domain.ports import (
    Clock,
    KeyCache,
    Metrics,
    RateLimiter,
    Store,
    Transaction,
    UsageCounter,
    UsageRecorder,
)
from keyplane.domain.ratelimits import Admission, IpAllowlist, merge
from keyplane.domain.routes import EMPTY, compiled
from keyplane.domain.tokens import KEY_LENGTH, KeyHasher, parse_key
from keyplane.domain.verification import CachedKey, Code, ProfileView, Verdict
from keyplane.metrics import NullMetrics
from keyplane.services.common import Principal

_NOT_FOUND = Verdict("NOT_FOUND")
# Where a key id found missing is remembered among the digests (no digest has a colon).
_BY_ID = "id:"
TTL_DEFAULT = timedelta(seconds=30)

log = logging.getLogger(__name__)


class NeedsLoad:
    """A cache miss that the caller asked not to resolve from the store."""


NEEDS_LOAD = NeedsLoad()


class Verifier:
    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        cache: KeyCache,
        clock: Clock,
        usage: UsageRecorder,
        counter: UsageCounter,
        limiter: RateLimiter,
        *,
        ttl: timedelta = TTL_DEFAULT,
        background: Callable[[Callable[[], None]], object] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._limiter = limiter
        # True when checking limits waits on the network (Redis): an event loop then calls
        # judge_async/principal_of_async for a limited key. An attribute, read per request.
        self.limits_block: bool = limiter.blocking
        self.metrics: Metrics = metrics or NullMetrics()
        self._store = store
        self._hasher = hasher
        self._cache = cache
        self._clock = clock
        self._usage = usage
        self._counter = counter
        self._ttl = ttl
        self._background = background or _thread
        # Digests being reloaded: one reload per stale record, however many requests see it.
        self._refreshing: set[str] = set()

    def lookup(self, presented: str, *, load: bool = True) -> CachedKey | NeedsLoad | None:
        """The key's verification record, or None for garbage and unknown keys.

        With ``load=False`` a cache miss answers NEEDS_LOAD instead of reading the store, so an
        event loop can do the warm path inline and hand only the cold path to a thread.
        """
        if len(presented) != KEY_LENGTH:
            return None
        digest = self._hasher.digest(presented)
        entry = self._cache.get(digest)
        if entry is not None:
            # Only digests of keys that parsed are ever cached, and a digest match means the
            # presented text is that key: the checksum needs no second look (-2 µs a call).
            self.metrics.cache_lookup(True)
            return entry
        if parse_key(presented) is None:
            return None
        known_missing = self._cache.known_missing(digest)
        self.metrics.cache_lookup(known_missing)
        if known_missing:
            return None
        return self._load(digest) if load else NEEDS_LOAD

    def lookup_id(
        self, org_id: str, key_id: str, *, load: bool = True
    ) -> CachedKey | NeedsLoad | None:
        """The verification record of a key by its id (what an access token names), through
        the same cache as ``lookup``; None for a key that is gone or of another org."""
        entry = self._cache.get_by_key_id(key_id)
        if entry is not None:
            self.metrics.cache_lookup(True)
            return entry if entry.org_id == org_id else None
        # Ids are never reused: a key found missing by id stays missing.
        missing = self._cache.known_missing(_BY_ID + key_id)
        self.metrics.cache_lookup(missing)
        if missing:
            return None
        if not load:
            return NEEDS_LOAD
        return self._load_id(org_id, key_id)

    def _load_id(self, org_id: str, key_id: str) -> CachedKey | None:
        generation = self._cache.generation()
        loaded_at = self._clock()
        with self._store.read() as tx:
            key = tx.keys.get(org_id, key_id)
            if key is None:
                self._cache.put_missing(_BY_ID + key_id, generation)
                return None
            entry = self._entry(tx, key, key.digest, loaded_at)
            if entry is None:  # an ancestor is gone: so is this key
                self._cache.put_missing(_BY_ID + key_id, generation)
                return None
        self._cache.put(key.digest, entry, generation)
        return entry

    def _load(self, digest: str) -> CachedKey | None:
        generation = self._cache.generation()
        loaded_at = self._clock()
        # The lookup is an equality match on a unique index of keyed digests; an attacker
        # controls neither side of it, so there is no timing oracle to close here.
        with self._store.read() as tx:
            key = tx.keys.find_by_digest(digest)
            if key is None:
                self._cache.put_missing(digest, generation)
                return None
            entry = self._entry(tx, key, digest, loaded_at)
        if entry is None:  # an ancestor is gone: this key goes with it (never valid again)
            self._cache.put_missing(digest, generation)
            return None
        self._cache.put(digest, entry, generation)
        return entry

    def _entry(
        self, tx: Transaction, key: ApiKey, digest: str, loaded_at: datetime
    ) -> CachedKey | None:
        """The record of ``key`` as verification reads it; None when an ancestor is gone.

        A delegated key takes its ancestors' status (any one not active) and their earliest
        expiry, so the record alone answers for the whole chain."""
        chain = _ancestors(tx, key)
        if chain is None:
            return None
        app = tx.apps.get(key.org_id, key.app_id) if key.app_id else None
        profile = tx.profiles.get(key.org_id, key.profile_id) if key.profile_id else None
        org = tx.orgs.get(key.org_id)
        status, expires_at = key.stored_status, key.expires_at
        for ancestor in chain:
            if ancestor.stored_status != "active":
                status = ancestor.stored_status
            if ancestor.expires_at is not None and (
                expires_at is None or ancestor.expires_at < expires_at
            ):
                expires_at = ancestor.expires_at
        ratelimits = merge(
            org.ratelimits if org else (), app.ratelimits if app else (), key.ratelimits
        )
        return CachedKey(
            key_id=key.id,
            org_id=key.org_id,
            app_id=key.app_id,
            profile_id=key.profile_id,
            stored_status=status,
            expires_at=expires_at,
            scopes=effective_scopes(key.scopes, app),
            profile=ProfileView(profile.id, profile.name, profile.settings) if profile else None,
            metadata=key.metadata,
            environment=key.environment,
            digest=digest,
            stale_at=loaded_at + self._ttl,
            ratelimits=ratelimits,
            quota=key.quota,
            allowlist=IpAllowlist.of(key.ip_allowlist),
            limited=bool(ratelimits) or key.quota is not None,
            ancestors=tuple(ancestor.id for ancestor in chain),
            routes=compiled(org.route_table) if org else EMPTY,
        )

    def _revalidate(self, digest: str) -> None:
        """Reloads a stale record in the background; the caller answers from the old one."""
        if digest in self._refreshing:
            return
        self._refreshing.add(digest)
        try:
            self._background(partial(self._refresh, digest))
        except RuntimeError:  # shutting down: the pool takes no more work
            self._refreshing.discard(digest)

    def _refresh(self, digest: str) -> None:
        try:
            self._load(digest)  # replaces the record, or forgets it when the key is gone
        except StorageUnavailable:
            log.warning("could not revalidate a cached key record; will retry on next use")
        finally:
            self._refreshing.discard(digest)

    def verify(
        self,
        org_id: str,
        presented: str,
        scopes: Sequence[str] = (),
        *,
        ip: str | None = None,
        cost: int = 1,
    ) -> Verdict:
        """The verdict for ``presented`` within ``org_id``; a key of another org is NOT_FOUND."""
        return self.judge(org_id, self.load(presented), scopes, ip=ip, cost=cost)

    def judge(
        self,
        org_id: str,
        entry: CachedKey | None,
        scopes: Sequence[str] = (),
        *,
        ip: str | None = None,
        cost: int = 1,
    ) -> Verdict:
        """The verdict, in the order domain/verification.py documents. ``ip``: the client's
        address (required by a key with an allowlist); ``cost``: what this use spends of
        the key's rate limits and quota (0: check only)."""
        now = self._clock()
        verdict = self._judge(org_id, entry, scopes, now, ip)
        if isinstance(verdict, CachedKey):  # every check passed; the limits decide
            admission = self._limiter.admit(
                verdict.key_id, verdict.ratelimits, verdict.quota, cost, now
            )
            verdict = Verdict(admission.code, verdict, (), admission)
        # A key of another organization counts as NOT_FOUND in the asking one, against no key.
        self._counter.count(org_id, verdict.key, verdict.code, now)
        return verdict

    async def judge_async(
        self,
        org_id: str,
        entry: CachedKey | None,
        scopes: Sequence[str] = (),
        *,
        ip: str | None = None,
        cost: int = 1,
    ) -> Verdict:
        """``judge`` for an event loop when the limiter waits on the network
        (``limits_block``): the limits are checked without holding a thread."""
        now = self._clock()
        verdict = self._judge(org_id, entry, scopes, now, ip)
        if isinstance(verdict, CachedKey):
            admission = await self._limiter.admit_async(
                verdict.key_id, verdict.ratelimits, verdict.quota, cost, now
            )
            verdict = Verdict(admission.code, verdict, admission=admission)
        self._counter.count(org_id, verdict.key, verdict.code, now)
        return verdict

    def _judge(
        self,
        org_id: str,
        entry: CachedKey | None,
        scopes: Sequence[str],
        now: datetime,
        ip: str | None,
    ) -> Verdict | CachedKey:
        """The verdict of every check before the limits, or the entry when those passed
        and its limits decide."""
        if entry is not None and now >= entry.stale_at:
            self._revalidate(entry.digest)
        if entry is None or entry.org_id != org_id:
            return _NOT_FOUND
        code = entry.code_at(now)
        if code != "VALID":
            return Verdict(code, entry)
        self._usage.touch(entry.key_id, now)
        if entry.allowlist is not None and not entry.allowlist.allows(ip):
            return Verdict("IP_FORBIDDEN", entry)
        if scopes:
            missing = entry.scopes.missing(scopes)
            if missing:
                return Verdict("INSUFFICIENT_SCOPE", entry, tuple(missing))
        if entry.limited:
            return entry
        return Verdict("VALID", entry)

    def standing(self, entry: CachedKey) -> Code:
        """The key's status now (VALID, EXPIRED or DISABLED), without using it: for a
        request refused before any verification (no route for it) that must still tell a
        dead key (401) from a live one (403)."""
        return entry.code_at(self._clock())

    def authenticate(self, presented: str | None, ip: str | None = None) -> Principal:
        """The caller behind a presented key, or Unauthenticated (never saying why exactly)."""
        return self.principal_of(self.load(presented) if presented else None, ip)

    def principal_of(self, entry: CachedKey | None, ip: str | None = None) -> Principal:
        """The caller, after the key's own limits admitted this call: IpForbidden outside
        its allowlist (``ip``: the client's address), LimitExceeded over a rate limit or
        out of quota (each call costs 1). The outcome is counted like a verification's."""
        entry, now = self._caller(entry, ip)
        admission = None
        if entry.limited:
            admission = self._limiter.admit(entry.key_id, entry.ratelimits, entry.quota, 1, now)
        return self._admitted(entry, admission, now)

    async def principal_of_async(self, entry: CachedKey | None, ip: str | None = None) -> Principal:
        """``principal_of`` for an event loop when the limiter waits on the network."""
        entry, now = self._caller(entry, ip)
        admission = None
        if entry.limited:
            admission = await self._limiter.admit_async(
                entry.key_id, entry.ratelimits, entry.quota, 1, now
            )
        return self._admitted(entry, admission, now)

    def _caller(self, entry: CachedKey | None, ip: str | None) -> tuple[CachedKey, datetime]:
        """The checks of a calling key before its limits (raising what refuses it)."""
        if entry is None:
            self.metrics.authenticated("NOT_FOUND")
            raise Unauthenticated("The API key is missing, malformed or unknown.")
        now = self._clock()
        if now >= entry.stale_at:
            self._revalidate(entry.digest)
        code = entry.code_at(now)
        if code == "EXPIRED":
            self._counted(entry, code, now)
            raise Unauthenticated("The API key has expired.")
        if code == "DISABLED":
            self._counted(entry, code, now)
            raise Unauthenticated("The API key is disabled.")
        self._usage.touch(entry.key_id, now)
        if entry.allowlist is not None and not entry.allowlist.allows(ip):
            self._counted(entry, "IP_FORBIDDEN", now)
            raise IpForbidden
        return entry, now

    def _admitted(self, entry: CachedKey, admission: Admission | None, now: datetime) -> Principal:
        if admission is not None and not admission.admitted:
            self._counted(entry, admission.code, now)
            raise LimitExceeded(admission)
        self._counted(entry, "VALID", now)  # the outcome of authentication
        return Principal(entry.org_id, entry.key_id, entry.scopes, limits=admission)

    def _counted(self, entry: CachedKey, code: str, now: datetime) -> None:
        self._counter.count(entry.org_id, entry, code, now)
        self.metrics.authenticated(code)

    def load(self, presented: str) -> CachedKey | None:
        """``lookup`` that reads the store on a cache miss."""
        entry = self.lookup(presented)
        assert not isinstance(entry, NeedsLoad)  # noqa: S101 - load=True never answers it
        return entry


def _ancestors(tx: Transaction, key: ApiKey) -> list[ApiKey] | None:
    """The keys above ``key``, parent first; None when one of them no longer exists.

    A delegated key is only as alive as every key above it: its record folds their status
    and expiry in, read in the same transaction as the key (one primary-key read per level;
    depth is bounded by KEYPLANE_MAX_KEY_DEPTH, and root keys read nothing more).
    """
    chain: list[ApiKey] = []
    parent_id = key.parent_id
    while parent_id is not None:
        parent = tx.keys.get(key.org_id, parent_id)
        if parent is None:
            return None
        chain.append(parent)
        parent_id = parent.parent_id
    return chain


def _thread(task: Callable[[], None]) -> None:
    threading.Thread(target=task, name="keyplane-revalidate", daemon=True).start()
