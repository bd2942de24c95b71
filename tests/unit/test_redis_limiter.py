"""What only the Redis limiter does: exact across threads (and so nodes) sharing one Redis,
a missing count seeded from the database rather than a cached record, spends batched with
their refill instant, and the failure policy when Redis goes away (a redis-server of the
test's own, killed mid-test; the shared one is never touched beyond a key prefix)."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta

import pytest
import redis

from keyplane.domain.errors import LimitsUnavailable
from keyplane.domain.ports import QuotaSpend
from keyplane.domain.ratelimits import Quota, RateLimit, Refill
from keyplane.redisclient import PipelinedRedis
from keyplane.redislimits import RedisFailurePolicy, RedisRateLimiter

from support.aio import run

pytestmark = pytest.mark.redis

BURST = RateLimit("burst", 3, 60)


class Metrics:
    """Records what the limiter reports (the Metrics port's two Redis calls)."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.decisions: list[tuple[str, str]] = []

    def redis_error(self, operation: str) -> None:
        self.errors.append(operation)

    def limits_unavailable(self, kind: str, decision: str) -> None:
        self.decisions.append((kind, decision))

    def __getattr__(self, name: str) -> object:
        return lambda *args: None


class Database:
    """The stored quotas the limiter seeds from, and the batches it writes back."""

    def __init__(self) -> None:
        self.quotas: dict[str, Quota] = {}
        self.batches: list[dict[str, QuotaSpend]] = []
        self.reads = 0

    def read(self, key_id: str) -> Quota | None:
        self.reads += 1
        return self.quotas.get(key_id)

    def write(self, spent: Mapping[str, QuotaSpend]) -> None:
        self.batches.append(dict(spent))


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _limiter(
    client: redis.Redis,
    prefix: str,
    db: Database,
    setting: str | None = None,
    metrics: Metrics | None = None,
    pause: float = 1.0,
) -> RedisRateLimiter:
    policy = RedisFailurePolicy(setting, metrics or Metrics(), pause=pause)  # type: ignore[arg-type]
    return RedisRateLimiter(client, db.read, db.write, policy, prefix=prefix)


def test_many_threads_on_one_key_admit_exactly_the_limit_and_the_quota(
    client: redis.Redis, redis_prefix: str
) -> None:
    db = Database()
    db.quotas["k"] = Quota(150)
    # Separate limiters stand for separate nodes; they share only Redis.
    nodes = [_limiter(client, redis_prefix, db) for _ in range(4)]
    limit = RateLimit("minute", 100, 60)
    admitted = [0] * 16

    def hammer(index: int) -> None:
        node = nodes[index % len(nodes)]
        for _ in range(20):
            now = datetime.now(UTC)
            if node.admit("k", (limit,), db.quotas["k"], 1, now).admitted:
                admitted[index] += 1
            if node.admit("q", (), Quota(50), 1, now).admitted:
                admitted[index] += 1000

    db.quotas["q"] = Quota(50)
    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(a % 1000 for a in admitted) == 100
    assert sum(a // 1000 for a in admitted) == 50


def test_a_missing_count_is_seeded_from_the_database_not_the_cached_record(
    client: redis.Redis, redis_prefix: str
) -> None:
    db = Database()
    db.quotas["k"] = Quota(2)  # the database knows of spends the cached record predates
    limiter = _limiter(client, redis_prefix, db)
    cached = Quota(1000)
    now = datetime.now(UTC)
    assert limiter.admit("k", (), cached, 1, now).quota_remaining == 1
    assert limiter.admit("k", (), cached, 1, now).quota_remaining == 0
    assert limiter.admit("k", (), cached, 1, now).code == "USAGE_EXCEEDED"
    assert db.reads == 1  # once, when Redis had no count


def test_a_stale_node_cannot_reseed_over_a_patch(client: redis.Redis, redis_prefix: str) -> None:
    db = Database()
    db.quotas["k"] = Quota(10)
    a, b = _limiter(client, redis_prefix, db), _limiter(client, redis_prefix, db)
    now = datetime.now(UTC)
    a.admit("k", (), Quota(10), 1, now)
    db.quotas["k"] = Quota(3)
    b.quota_set("k", Quota(3))  # node B's PATCH, after its commit
    # Node A still holds the old record: Redis's count wins, nothing is re-seeded.
    assert a.admit("k", (), Quota(10), 1, now).quota_remaining == 2
    b.quota_add("k", 5)
    assert a.admit("k", (), Quota(10), 1, now).quota_remaining == 6
    b.forget("k")
    assert a.peek("k") is None


def test_spends_are_batched_under_their_refill_instant(
    client: redis.Redis, redis_prefix: str
) -> None:
    db = Database()
    refill = Refill(5, "daily")
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    db.quotas["k"] = Quota(1, refill, today - timedelta(days=1))  # yesterday's count
    a, b = _limiter(client, redis_prefix, db), _limiter(client, redis_prefix, db)
    now = datetime.now(UTC)
    assert a.admit("k", (), db.quotas["k"], 2, now).quota_remaining == 3  # refilled, spent 2
    assert b.admit("k", (), db.quotas["k"], 1, now).quota_remaining == 2
    a.flush()
    b.flush()
    # Both under today's refill: the store sets 5 - 2, then subtracts 1 (either order).
    assert db.batches == [{"k": (2, today, 5)}, {"k": (1, today, 5)}]


def test_a_refused_check_writes_no_rate_state(client: redis.Redis, redis_prefix: str) -> None:
    limiter = _limiter(client, redis_prefix, Database())
    now = datetime.now(UTC)
    for _ in range(3):
        assert limiter.admit("k", (BURST,), None, 1, now).admitted
    refused = limiter.admit("k", (BURST, RateLimit("other", 10, 60)), None, 1, now)
    assert refused.code == "RATE_LIMITED"
    assert client.hget(f"{redis_prefix}{{k}}:r", "other") is None
    assert 0 < client.pttl(f"{redis_prefix}{{k}}:r") <= 61_000  # gone once drained


def test_a_limit_that_does_not_divide_the_period_is_exact(
    client: redis.Redis, redis_prefix: str
) -> None:
    limiter = _limiter(client, redis_prefix, Database())
    limit = RateLimit("odd", 7, 1)  # one every 142857.142857… µs
    now = datetime(2030, 1, 1, tzinfo=UTC)
    assert sum(limiter.admit("k", (limit,), None, 1, now).admitted for _ in range(10)) == 7
    # Exactly one interval later, one more (the remainders add up, none is rounded away).
    later = now + timedelta(microseconds=142858)
    assert limiter.admit("k", (limit,), None, 1, later).admitted
    assert not limiter.admit("k", (limit,), None, 1, later).admitted


def test_a_flushed_script_cache_is_reloaded(own_redis: object, redis_prefix: str) -> None:
    client = redis.Redis.from_url(own_redis.url)  # type: ignore[attr-defined]
    limiter = _limiter(client, redis_prefix, Database())
    now = datetime.now(UTC)
    assert limiter.admit("k", (BURST,), None, 1, now).admitted
    client.script_flush()  # as after a Redis restart: EVALSHA answers NOSCRIPT
    assert limiter.admit("k", (BURST,), None, 1, now).limits[0].remaining == 1
    client.close()


@pytest.mark.parametrize(
    ("setting", "limits", "quota", "answer"),
    [
        # Default: rate limits fail open, quotas closed; a key with both is refused.
        (None, (BURST,), None, "open"),
        (None, (), Quota(5), "closed"),
        (None, (BURST,), Quota(5), "closed"),
        ("open", (BURST,), Quota(5), "open"),
        ("closed", (BURST,), None, "closed"),
    ],
)
def test_when_redis_goes_away_the_policy_answers(
    own_redis: object,
    caplog: pytest.LogCaptureFixture,
    setting: str | None,
    limits: tuple[RateLimit, ...],
    quota: Quota | None,
    answer: str,
) -> None:
    db = Database()
    db.quotas["k"] = Quota(5)
    metrics = Metrics()
    client = redis.Redis.from_url(own_redis.url, socket_timeout=0.5)  # type: ignore[attr-defined]
    limiter = _limiter(client, "kp:", db, setting, metrics)
    now = datetime.now(UTC)
    assert limiter.admit("k", limits, quota, 1, now).admitted
    own_redis.stop()  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="keyplane.redislimits"):
        for _ in range(5):
            if answer == "closed":
                with pytest.raises(LimitsUnavailable) as refused:
                    limiter.admit("k", limits, quota, 1, now)
                assert refused.value.retry_after >= 1
            else:
                admission = limiter.admit("k", limits, quota, 1, now)
                assert admission.admitted
                assert admission.limits == ()  # nothing checked, nothing claimed
    assert metrics.errors == ["admit"]  # then a pause: Redis is not asked on every call
    kinds = [k for k, present in (("ratelimit", limits), ("quota", quota)) if present]
    assert metrics.decisions == [(kind, answer) for kind in kinds] * 5
    lines = [r for r in caplog.records if r.name == "keyplane.redislimits"]
    assert len(lines) == 1
    assert "Redis unreachable" in lines[0].getMessage()
    client.close()


def test_a_failed_change_is_repaired_by_a_reseed(
    client: redis.Redis, redis_prefix: str, own_redis: object
) -> None:
    db = Database()
    db.quotas["k"] = Quota(5)
    own = redis.Redis.from_url(own_redis.url, socket_timeout=0.5)  # type: ignore[attr-defined]
    limiter = _limiter(own, redis_prefix, db, pause=0)
    now = datetime.now(UTC)
    assert limiter.admit("k", (), db.quotas["k"], 1, now).quota_remaining == 4
    own.set("blocker", 1)
    own.config_set("maxmemory", 1)  # every write now fails (OOM): the PATCH cannot land
    db.quotas["k"] = Quota(100)
    limiter.quota_set("k", Quota(100))
    own.config_set("maxmemory", 0)
    limiter.flush()  # deletes the stale count ...
    assert limiter.admit("k", (), Quota(5), 1, now).quota_remaining == 99  # ... re-seeded
    own.close()


def test_the_async_path_answers_like_the_sync_one_and_admits_exactly_the_limit(
    redis_url: str, client: redis.Redis, redis_prefix: str
) -> None:
    db = Database()
    db.quotas["q"] = Quota(30, None, None)
    limit = RateLimit("minute", 40, 60)

    async def scenario() -> tuple[int, int, int | None]:
        remote = PipelinedRedis(redis_url)
        policy = RedisFailurePolicy(None, Metrics())  # type: ignore[arg-type]
        limiter = RedisRateLimiter(
            client, db.read, db.write, policy, prefix=redis_prefix, async_client=remote
        )
        now = datetime.now(UTC)
        rated = await asyncio.gather(
            *(limiter.admit_async("k", (limit,), None, 1, now) for _ in range(100))
        )
        quota = await asyncio.gather(
            *(limiter.admit_async("q", (), Quota(999), 1, now) for _ in range(100))
        )
        await remote.aclose()
        left = limiter.admit("q", (), Quota(999), 0, now).quota_remaining
        return sum(a.admitted for a in rated), sum(a.admitted for a in quota), left

    assert run(scenario) == (40, 30, 0)
    # Every call that found the count missing read the database (off the event loop); the
    # first seed won, the rest were ignored: the count is exact all the same.
    assert 1 <= db.reads <= 100


def test_the_async_path_reloads_its_script_and_follows_the_policy_when_redis_goes_away(
    own_redis: object,
) -> None:
    metrics = Metrics()

    async def scenario() -> None:
        remote = PipelinedRedis(own_redis.url)  # type: ignore[attr-defined]
        sync = redis.Redis.from_url(own_redis.url)  # type: ignore[attr-defined]
        policy = RedisFailurePolicy(None, metrics)  # type: ignore[arg-type]
        db = Database()
        limiter = RedisRateLimiter(sync, db.read, db.write, policy, async_client=remote)
        now = datetime.now(UTC)
        assert (await limiter.admit_async("k", (BURST,), None, 1, now)).admitted
        sync.script_flush()  # NOSCRIPT: the pipelined connection sends the script again
        assert (await limiter.admit_async("k", (BURST,), None, 1, now)).limits[0].remaining == 1
        own_redis.stop()  # type: ignore[attr-defined]
        assert (await limiter.admit_async("k", (BURST,), None, 1, now)).limits == ()
        with pytest.raises(LimitsUnavailable):
            await limiter.admit_async("k", (), Quota(3), 1, now)
        await remote.aclose()
        sync.close()

    run(scenario)
    assert metrics.errors == ["admit"]
    assert metrics.decisions == [("ratelimit", "open"), ("quota", "closed")]


def test_a_hung_redis_is_given_up_on_within_about_twice_the_timeout(own_redis: object) -> None:
    metrics = Metrics()

    async def scenario() -> float:
        remote = PipelinedRedis(own_redis.url, timeout=0.2)  # type: ignore[attr-defined]
        sync = redis.Redis.from_url(own_redis.url)  # type: ignore[attr-defined]
        policy = RedisFailurePolicy(None, metrics)  # type: ignore[arg-type]
        limiter = RedisRateLimiter(
            sync, Database().read, Database().write, policy, async_client=remote
        )
        now = datetime.now(UTC)
        assert (await limiter.admit_async("k", (BURST,), None, 1, now)).admitted
        own_redis.pause()  # type: ignore[attr-defined]
        started = time.monotonic()
        answer = await limiter.admit_async("k", (BURST,), None, 1, now)
        assert answer.admitted
        assert answer.limits == ()  # the policy's answer: open for rate limits
        await remote.aclose()
        return time.monotonic() - started

    try:
        assert run(scenario) < 0.5
    finally:
        own_redis.resume()  # type: ignore[attr-defined]
    assert metrics.errors == ["admit"]
