"""Rate limits and quotas in Redis, shared by every node and worker (KEYPLANE_REDIS_URL).

One round trip per verification: ``_ADMIT`` (a Lua script, called by its SHA and sent
again on NOSCRIPT) reads every named limit's GCRA state and the quota, and only when all
admit spends them all. A refused call writes nothing but a due
refill; cost 0 reads only. Redis runs a script alone, so many nodes checking one key
admit exactly the limit (tests/unit/test_redis_limiter.py hammers one key from threads).

Numbers: Lua has only doubles, exact for integers below 2^53. Times are integer
microseconds (now ≈ 1.8e15; nanoseconds would not be exact). An emission interval
``period / limit`` is rarely a whole number of microseconds, so a TAT is kept as whole
microseconds plus a remainder in units of 1/limit µs: admission is exact rational
arithmetic (the in-process limiter floors the interval to a nanosecond, which lets a
huge limit through slightly more often; for limits that divide the period the two agree
to the nanosecond). Only the reported ``remaining`` of limits above ~10⁸ may be rounded.

Keys: ``<prefix>{<key id>}:r`` (a hash: per limit name its TAT, µs and remainder) and
``<prefix>{<key id>}:q`` (a hash: ``r`` remaining, ``e`` the refill instant it reflects,
µs). The braces are a Redis Cluster hash tag, so both live in one slot and one script may
touch both. A rate hash expires when its last TAT has passed (then it equals no state);
a quota hash after ``QUOTA_IDLE`` without use, and is then re-seeded.

Where the truth lives, and how stale each copy can be:

- Redis holds the live counts: every node's admissions go through it, so they are exact
  across nodes while Redis keeps its data.
- The database holds the quota as of the last batch: each node sends the spends it made
  (and refills the script applied) every flush interval (``record_quota``), tagged with
  the refill instant they were made under, so several nodes' deltas add up: equal instant,
  subtract; newer, amount minus spent; older, ignored (a refill since wiped them; see
  KeyRepository.record_quota). Stale by one interval per node (plus a node's unsent batch
  when it dies: an under-charge, never a wrong refusal). The console and GET show Redis's
  numbers (an ``admit`` of cost 0); the stored count is for re-seeding.
- Redis keeps nothing on disk here. A quota hash that is missing (first use, idle expiry,
  a Redis restart) is seeded from the *database*, read fresh on that call (a second round
  trip, on a miss only), never from the key's cached record: a cached record can be
  minutes old (stale-while-revalidate), and a node re-seeding an old count after a
  restart would hand out quota already spent. The seed is written only if the hash is
  still missing, so a seed read before a PATCH cannot overwrite the PATCH's state
  (``quota_set`` writes Redis after its commit). What remains: a ``quota_add`` that lands
  between a seeding node's database read and its seed finds no hash and adds nothing;
  the addition is in the database and reaches Redis at the next re-seed. Spends a node
  made before a PATCH that *replaces* the count, sent after it, are subtracted from the
  new stored count (Redis is unaffected).
- GCRA state lives only in Redis: after a Redis restart every limit starts full.
- A failed ``quota_set``/``quota_add``/``forget`` deletes the key's Redis state from the
  flush thread until it succeeds, so the next check re-seeds from the database.

When Redis cannot be reached, ``RedisFailurePolicy`` below decides, and nothing else does.

Two ways in: ``admit`` (redis-py, blocking; key-authenticated API calls, whose sync
dependencies already run in the threadpool, and the services) and ``admit_async`` (the
verify route, on the event loop, through redisclient.PipelinedRedis: see there why not
redis.asyncio).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

import redis
from redis.exceptions import RedisError

from keyplane.domain.errors import LimitsUnavailable
from keyplane.domain.ports import Metrics, QuotaSpend
from keyplane.domain.ratelimits import Admission, LimitState, Quota, RateLimit, Refill
from keyplane.jobs import Periodic
from keyplane.redisclient import PipelinedRedis, sha1

log = logging.getLogger(__name__)

QUOTA_IDLE_MS: Final = 86_400_000  # a quota hash unused for a day is re-seeded from the db
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_CODES: Final = ("VALID", "RATE_LIMITED", "USAGE_EXCEEDED")
_SEED: Final = 3

# KEYS[1] the rate hash, KEYS[2] the quota hash.
# ARGV: now (µs), cost, n, then n times (name, limit, period µs), then: quota (1|0), seed
# remaining ('' = none), seed refill instant, refill amount (0 = none), the due refill
# instant, the quota hash's idle TTL (ms).
# Returns {code, remaining (-1: no quota), refill instant, refilled (1|0), then per limit:
# remaining, reset (µs, remainder), retry (µs, remainder)}; code 3: seed first.
_ADMIT: Final = """
local now = tonumber(ARGV[1])
local cost = tonumber(ARGV[2])
local n = tonumber(ARGV[3])
local ask = math.max(cost, 1)
local qa = 4 + 3 * n
local remaining, epoch, write, refilled = -1, 0, false, 0
if ARGV[qa] == '1' then
  local state = redis.call('HMGET', KEYS[2], 'r', 'e')
  if state[1] then
    remaining, epoch = tonumber(state[1]), tonumber(state[2])
  else
    if ARGV[qa + 1] == '' then return {3} end
    remaining, epoch, write = tonumber(ARGV[qa + 1]), tonumber(ARGV[qa + 2]), true
  end
  local amount = tonumber(ARGV[qa + 3])
  if amount > 0 and epoch < tonumber(ARGV[qa + 4]) then
    remaining, epoch, write, refilled = amount, tonumber(ARGV[qa + 4]), true, 1
  end
end
local tats = {}
if n > 0 then
  local fields = {}
  for i = 1, n do
    fields[2 * i - 1] = ARGV[1 + 3 * i]
    fields[2 * i] = ARGV[1 + 3 * i] .. ':f'
  end
  tats = redis.call('HMGET', KEYS[1], unpack(fields))
end
local refused = false
local stands, after, spent = {}, {}, {}
for i = 1, n do
  local limit, period = tonumber(ARGV[2 + 3 * i]), tonumber(ARGV[3 + 3 * i])
  local q, r = math.floor(period / limit), period % limit
  local su, sf = now, 0
  local t = tonumber(tats[2 * i - 1])
  if t and t >= now then su, sf = t, math.min(tonumber(tats[2 * i]) or 0, limit - 1) end
  stands[i] = {math.floor((limit * (period - (su - now)) - sf) / period), su - now, sf, 0, 0}
  local x = sf + ask * r
  local nu, nf = su + ask * q + math.floor(x / limit), x % limit
  if nu - now < period or (nu - now == period and nf == 0) then
    x = sf + cost * r
    local cu, cf = su + cost * q + math.floor(x / limit), x % limit
    spent[i] = {cu, cf}
    after[i] = {math.floor((limit * (period - (cu - now)) - cf) / period), cu - now, cf, 0, 0}
  else
    refused = true
    stands[i][4], stands[i][5] = nu - now - period, nf
    after[i] = stands[i]
  end
end
local code = 0
if refused then code = 1 elseif remaining >= 0 and remaining < ask then code = 2 end
if code == 0 and cost > 0 then
  local last = 0
  for i = 1, n do
    redis.call('HSET', KEYS[1], ARGV[1 + 3 * i], spent[i][1], ARGV[1 + 3 * i] .. ':f', spent[i][2])
    last = math.max(last, spent[i][1])
  end
  -- Relative to the caller's clock, not Redis's: gone a second after the last TAT passed.
  if n > 0 then redis.call('PEXPIRE', KEYS[1], math.floor((last - now) / 1000) + 1000) end
  if remaining >= 0 then remaining, write = remaining - cost, true end
end
if write then redis.call('HSET', KEYS[2], 'r', remaining, 'e', epoch) end
if remaining >= 0 then redis.call('PEXPIRE', KEYS[2], ARGV[qa + 5]) end
local out = {code, remaining, epoch, refilled}
local shown = after
if code ~= 0 then shown = stands end
for i = 1, n do
  for j = 1, 5 do out[#out + 1] = shown[i][j] end
end
return out
"""

# KEYS[1] the quota hash; ARGV[1] the amount. Adds only to a count Redis has: a missing
# one is seeded from the database, which has the addition already.
_ADD: Final = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'r', ARGV[1]) end
return 0
"""

Decision = Literal["open", "closed"]


class RedisFailurePolicy:
    """What a verification answers when Redis cannot be reached: decided here, once.

    KEYPLANE_REDIS_FAILURE=open admits without the limits that could not be checked;
    closed refuses with LimitsUnavailable (503 with Retry-After: keyplane cannot tell
    whether the key may be used, and says so rather than guessing). Unset: closed for a
    quota (a prepaid count must not be overspent), open for rate limits (an outage of
    Redis must not become an outage of every API behind keyplane). A key with both is
    refused when either kind is closed. Every failure counts ``redis_error``, every
    decision ``limits_unavailable``; the log gets one line per ``log_every`` seconds
    with the number of failures since, not one per request.

    After a failure the limiter skips Redis for ``pause`` seconds and applies this policy
    directly, so a Redis that times out does not add its timeout to every verification.
    """

    def __init__(
        self,
        setting: Decision | None,
        metrics: Metrics,
        *,
        log_every: float = 30.0,
        pause: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ratelimit: Decision = setting or "open"
        self.quota: Decision = setting or "closed"
        self._metrics = metrics
        self._log_every = log_every
        self._pause = pause
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._logged_at: float | None = None
        self._unlogged = 0
        self._down_until = 0.0

    @property
    def down(self) -> bool:
        return self._monotonic() < self._down_until

    def failed(self, operation: str, exc: Exception) -> None:
        self._metrics.redis_error(operation)
        now = self._monotonic()
        with self._lock:
            self._down_until = now + self._pause
            self._unlogged += 1
            if self._logged_at is not None and now - self._logged_at < self._log_every:
                return
            count, self._unlogged, self._logged_at = self._unlogged, 0, now
        log.warning(
            "Redis unreachable (%s: %s); %d failed calls since the last line; "
            "rate limits fail %s, quotas fail %s (KEYPLANE_REDIS_FAILURE)",
            operation,
            type(exc).__name__,
            count,
            self.ratelimit,
            self.quota,
        )

    def admission(
        self, limits: tuple[RateLimit, ...], quota: Quota | None, now: datetime
    ) -> Admission:
        """The answer without Redis, or LimitsUnavailable."""
        kinds = []
        if limits:
            kinds.append(("ratelimit", self.ratelimit))
        if quota is not None:
            kinds.append(("quota", self.quota))
        decision: Decision = "closed" if any(d == "closed" for _, d in kinds) else "open"
        for kind, _ in kinds:
            self._metrics.limits_unavailable(kind, decision)
        if decision == "closed":
            raise LimitsUnavailable(max(1, round(self._pause)))
        return Admission("VALID", (), None, 0.0, now)


class RedisRateLimiter:
    """The RateLimiter of several nodes: state in Redis, one script per verification.

    ``read`` gives a key's stored quota (the database's, fresh) to seed a missing count;
    ``write`` receives the spends in batches (a LimitStore's record_quota).
    """

    # admit waits on the network: an event loop awaits admit_async (api/routes/verify.py).
    blocking = True

    def __init__(
        self,
        client: redis.Redis,
        read: Callable[[str], Quota | None],
        write: Callable[[Mapping[str, QuotaSpend]], None],
        policy: RedisFailurePolicy,
        *,
        prefix: str = "kp:",
        interval: float = 1.0,
        async_client: PipelinedRedis | None = None,
    ) -> None:
        self._redis = client
        self._async = async_client
        self._read = read
        self._write = write
        self._policy = policy
        self._prefix = prefix
        self._admit = client.register_script(_ADMIT)
        self._add = client.register_script(_ADD)
        self._admit_sha = sha1(_ADMIT)
        self._lock = threading.Lock()
        # key id -> [spent, refill instant (µs, 0: none), refill amount] since the last batch
        self._spent: dict[str, list[int]] = {}
        # Redis keys a failed change left stale, deleted by the next flush (re-seeded then)
        self._lost: set[str] = set()
        self._refills: dict[Refill, tuple[int, int]] = {}
        self._flusher = Periodic("keyplane-quota", self.flush, interval)

    def _keys(self, key_id: str) -> tuple[str, str]:
        base = f"{self._prefix}{{{key_id}}}"
        return f"{base}:r", f"{base}:q"

    def admit(
        self,
        key_id: str,
        limits: tuple[RateLimit, ...],
        quota: Quota | None,
        cost: int,
        now: datetime,
    ) -> Admission:
        if self._policy.down:
            return self._policy.admission(limits, quota, now)
        call = _Call(self, key_id, limits, quota, cost, now)
        try:
            answer = self._admit(call.keys, call.args())
            if answer[0] == _SEED:
                answer = self._admit(call.keys, call.seeded(self._read(key_id)))
        except RedisError as exc:
            self._policy.failed("admit", exc)
            return self._policy.admission(limits, quota, now)
        return call.admission(answer)

    async def admit_async(
        self,
        key_id: str,
        limits: tuple[RateLimit, ...],
        quota: Quota | None,
        cost: int,
        now: datetime,
    ) -> Admission:
        remote = self._async
        if remote is None:  # no asyncio connection: the sync client, in a thread
            return await asyncio.to_thread(self.admit, key_id, limits, quota, cost, now)
        if self._policy.down:
            return self._policy.admission(limits, quota, now)
        call = _Call(self, key_id, limits, quota, cost, now)
        try:
            # No deadline here: the connection has its own (redisclient._Protocol._check).
            answer = await remote.evalsha(self._admit_sha, _ADMIT, call.keys, call.args())
            if answer[0] == _SEED:  # rare: read the database off the event loop
                stored = await asyncio.to_thread(self._read, key_id)
                answer = await remote.evalsha(
                    self._admit_sha, _ADMIT, call.keys, call.seeded(stored)
                )
        except RedisError as exc:
            self._policy.failed("admit", exc)
            return self._policy.admission(limits, quota, now)
        return call.admission(answer)

    def _refill(self, refill: Refill, now: datetime, t: int) -> tuple[int, int]:
        """The due and the next refill instants (µs), computed once per refill period."""
        known = self._refills.get(refill)
        if known is None or not known[0] <= t < known[1]:
            known = self._refills[refill] = (
                _micros(refill.last_at(now)),
                _micros(refill.next_at(now)),
            )
            if len(self._refills) > 10_000:  # refills are few; bound it all the same
                self._refills.clear()
        return known

    def _note(self, key_id: str, spent: int, epoch: int, amount: int) -> None:
        with self._lock:
            entry = self._spent.get(key_id)
            if entry is None or entry[1] < epoch:  # a refill since wiped earlier spends
                self._spent[key_id] = [spent, epoch, amount]
            elif entry[1] == epoch:
                entry[0] += spent

    def quota_set(self, key_id: str, quota: Quota | None) -> None:
        with self._lock:
            self._spent.pop(key_id, None)
        quota_key = self._keys(key_id)[1]
        try:
            if quota is None:
                self._redis.delete(quota_key)
                return
            with self._redis.pipeline() as pipe:  # MULTI: the count and its instant together
                pipe.hset(quota_key, "r", quota.remaining)
                pipe.hset(quota_key, "e", _micros(quota.refilled_at))
                pipe.pexpire(quota_key, QUOTA_IDLE_MS)
                pipe.execute()
        except RedisError as exc:
            self._stale((quota_key,), "quota", exc)

    def quota_add(self, key_id: str, amount: int) -> None:
        try:
            self._add((self._keys(key_id)[1],), (amount,))
        except RedisError as exc:
            self._stale(self._keys(key_id)[1:], "quota", exc)

    def forget(self, key_id: str) -> None:
        with self._lock:
            self._spent.pop(key_id, None)
        try:
            self._redis.delete(*self._keys(key_id))
        except RedisError as exc:
            self._stale(self._keys(key_id), "forget", exc)

    def _stale(self, keys: Sequence[str], operation: str, exc: RedisError) -> None:
        """A change that did not reach Redis: its state there is deleted by the next flush
        (a quota is then re-seeded from the database, which has the change)."""
        self._policy.failed(operation, exc)
        with self._lock:
            self._lost.update(keys)

    def peek(self, key_id: str) -> int | None:
        """The count in Redis (None: none there), for tests."""
        value = self._redis.hget(self._keys(key_id)[1], "r")
        return None if value is None else int(value)

    def flush(self) -> None:
        with self._lock:
            batch, self._spent = self._spent, {}
            lost, self._lost = self._lost, set()
        if lost:
            try:
                self._redis.delete(*lost)
            except RedisError as exc:
                self._policy.failed("forget", exc)
                with self._lock:
                    self._lost |= lost
        if not batch:
            return
        try:
            self._write(
                {
                    key_id: (spent, _instant(epoch) if amount else None, amount)
                    for key_id, (spent, epoch, amount) in batch.items()
                }
            )
        except Exception:
            log.exception("could not record quota counts for %d keys; retrying", len(batch))
            with self._lock:
                for key_id, (spent, epoch, amount) in batch.items():
                    entry = self._spent.get(key_id)
                    if entry is None:
                        self._spent[key_id] = [spent, epoch, amount]
                    elif entry[1] == epoch:
                        entry[0] += spent

    def start(self) -> None:
        self._flusher.start()

    def stop(self) -> None:
        self._flusher.stop()
        self.flush()


class _Call:
    """One admission: the script's arguments, and its answer read back as an Admission."""

    __slots__ = (
        "_args",
        "amount",
        "cost",
        "key_id",
        "keys",
        "limiter",
        "limits",
        "now",
        "quota",
        "t",
        "upcoming",
    )

    def __init__(
        self,
        limiter: RedisRateLimiter,
        key_id: str,
        limits: tuple[RateLimit, ...],
        quota: Quota | None,
        cost: int,
        now: datetime,
    ) -> None:
        self.limiter = limiter
        self.key_id = key_id
        self.limits = limits
        self.quota = quota
        self.cost = cost
        self.now = now
        self.keys = limiter._keys(key_id)
        self.t = t = round(now.timestamp() * 1_000_000)
        args: list[Any] = [t, cost, len(limits)]
        for limit in limits:
            args += (limit.name, limit.limit, limit.period_seconds * 1_000_000)
        due = self.upcoming = 0
        self.amount = 0
        if quota is not None and quota.refill is not None:
            due, self.upcoming = limiter._refill(quota.refill, now, t)
            self.amount = quota.refill.amount
        args += (1 if quota is not None else 0, "", 0, self.amount, due, QUOTA_IDLE_MS)
        self._args = args

    def args(self) -> list[Any]:
        """The script's ARGV, without a seed."""
        return self._args

    def seeded(self, stored: Quota | None) -> list[Any]:
        """ARGV with the database's quota as the seed of a missing count (None: the key
        has no quota any more; its invalidation is on the way)."""
        args = list(self._args)
        at = 3 + 3 * len(self.limits)
        if stored is None:
            args[at] = 0
        else:
            args[at + 1] = stored.remaining
            args[at + 2] = _micros(stored.refilled_at)
        return args

    def admission(self, answer: list[int]) -> Admission:
        code, remaining, epoch, refilled = answer[0], answer[1], answer[2], answer[3]
        states = []
        for index, limit in enumerate(self.limits):
            left, reset_us, reset_f, retry_us, retry_f = answer[4 + 5 * index : 9 + 5 * index]
            states.append(
                LimitState(
                    limit,
                    left,
                    (reset_us + reset_f / limit.limit) / 1_000_000,
                    (retry_us + retry_f / limit.limit) / 1_000_000,
                )
            )
        if remaining >= 0:
            spent = self.cost if code == 0 else 0
            if spent or refilled:
                self.limiter._note(self.key_id, spent, epoch, self.amount)
        retry = 0.0
        if code == 1:
            retry = max(s.retry_after for s in states)
        elif code == 2 and self.upcoming:
            retry = (self.upcoming - self.t) / 1_000_000
        quota_left = remaining if remaining >= 0 else None
        return Admission(_CODES[code], tuple(states), quota_left, retry, self.now)


def _micros(at: datetime | None) -> int:
    return 0 if at is None else (at - _EPOCH) // timedelta(microseconds=1)


def _instant(micros: int) -> datetime | None:
    return None if micros == 0 else _EPOCH + timedelta(microseconds=micros)
