"""The RateLimiters, in process and in Redis, answer alike: every limit and the quota
checked first, then all spent at once; quota counts refilled on schedule and written back
as spends, never absolute counts. (test_redis_limiter.py has what only Redis does.)"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import pytest
import redis

from keyplane.domain.ports import QuotaSpend
from keyplane.domain.ratelimits import Admission, Quota, RateLimit, Refill
from keyplane.memory import InProcessRateLimiter
from keyplane.metrics import NullMetrics
from keyplane.redislimits import RedisFailurePolicy, RedisRateLimiter

T0 = datetime(2026, 11, 30, 23, 59, 0, tzinfo=UTC)
BURST = RateLimit("burst", 3, 60)
DAILY = RateLimit("daily", 5, 86400)


class Writes:
    def __init__(self) -> None:
        self.batches: list[dict[str, QuotaSpend]] = []
        self.fail = False

    def __call__(self, spent: Mapping[str, QuotaSpend]) -> None:
        if self.fail:
            raise RuntimeError("database down")
        self.batches.append(dict(spent))


class Limiter(Protocol):
    def admit(
        self,
        key_id: str,
        limits: tuple[RateLimit, ...],
        quota: Quota | None,
        cost: int,
        now: datetime,
    ) -> Admission: ...
    def quota_set(self, key_id: str, quota: Quota | None) -> None: ...
    def quota_add(self, key_id: str, amount: int) -> None: ...
    def forget(self, key_id: str) -> None: ...
    def peek(self, key_id: str) -> int | None: ...
    def flush(self) -> None: ...


class Stored:
    """The database's quotas as the Redis limiter reads them to seed a count: what the key's
    record said when the limiter first saw it, replaced by quota_set (as a PATCH would)."""

    limiter: RedisRateLimiter

    def __init__(self) -> None:
        self.quotas: dict[str, Quota | None] = {}

    def admit(
        self, key_id: str, limits: Any, quota: Quota | None, cost: int, now: datetime
    ) -> Admission:
        self.quotas.setdefault(key_id, quota)
        return self.limiter.admit(key_id, limits, quota, cost, now)

    def quota_set(self, key_id: str, quota: Quota | None) -> None:
        self.quotas[key_id] = quota
        self.limiter.quota_set(key_id, quota)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.limiter, name)


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def make(request: pytest.FixtureRequest) -> Iterator[Callable[[Writes | None], Limiter]]:
    if request.param == "memory":
        yield lambda writes=None: InProcessRateLimiter(writes or Writes(), lambda: T0)
        return
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    client = redis.Redis.from_url(url)

    def redis_limiter(writes: Writes | None = None) -> Limiter:
        stored = Stored()
        stored.limiter = RedisRateLimiter(
            client,
            stored.quotas.get,
            writes or Writes(),
            RedisFailurePolicy(None, NullMetrics()),
            prefix=prefix,
        )
        return stored  # type: ignore[return-value]

    yield redis_limiter
    client.close()


def test_a_refused_check_spends_nothing_of_any_limit_or_quota(
    make: Callable[..., Limiter],
) -> None:
    limiter = make()
    quota = Quota(10)
    for _ in range(3):
        assert limiter.admit("k", (BURST, DAILY), quota, 1, T0).admitted
    refused = limiter.admit("k", (BURST, DAILY), quota, 1, T0)
    assert refused.code == "RATE_LIMITED"
    assert [s.remaining for s in refused.limits] == [0, 2]  # daily not spent
    assert refused.quota_remaining == 7
    assert refused.retry_after == 20  # one unit of burst drains in 60/3 s
    # Once burst has room, daily and the quota continue from where they were.
    later = limiter.admit("k", (BURST, DAILY), quota, 1, T0 + timedelta(seconds=20))
    assert later.admitted
    assert [s.remaining for s in later.limits] == [0, 1]
    assert later.quota_remaining == 6


def test_quota_refuses_at_zero_and_leaves_the_rate_limits_unspent(
    make: Callable[..., Limiter],
) -> None:
    limiter = make()
    quota = Quota(2)
    assert limiter.admit("k", (BURST,), quota, 2, T0).quota_remaining == 0
    refused = limiter.admit("k", (BURST,), quota, 1, T0)
    assert refused.code == "USAGE_EXCEEDED"
    assert refused.limits[0].remaining == 1  # burst: 2 spent, not 3
    assert limiter.admit("k", (BURST,), quota, 0, T0).code == "USAGE_EXCEEDED"


def test_cost_beyond_what_remains_is_refused_whole(make: Callable[..., Limiter]) -> None:
    limiter = make()
    assert limiter.admit("k", (), Quota(5), 6, T0).code == "USAGE_EXCEEDED"
    assert limiter.admit("k", (), Quota(5), 5, T0).quota_remaining == 0


def test_cost_zero_checks_without_spending(make: Callable[..., Limiter]) -> None:
    limiter = make()
    for _ in range(5):
        answer = limiter.admit("k", (BURST,), Quota(1), 0, T0)
        assert answer.admitted
        assert answer.quota_remaining == 1
        assert answer.limits[0].remaining == 3


def test_a_daily_refill_sets_the_count_back_to_the_amount_at_midnight(
    make: Callable[..., Limiter],
) -> None:
    writes = Writes()
    limiter = make(writes)
    refill = Refill(4, "daily")
    quota = Quota(1, refill, datetime(2026, 11, 30, tzinfo=UTC))
    assert limiter.admit("k", (), quota, 1, T0).quota_remaining == 0
    assert limiter.admit("k", (), quota, 1, T0).code == "USAGE_EXCEEDED"
    midnight = datetime(2026, 12, 1, tzinfo=UTC)
    assert limiter.admit("k", (), quota, 1, midnight - timedelta(microseconds=1)).code == (
        "USAGE_EXCEEDED"
    )
    assert limiter.admit("k", (), quota, 1, midnight).quota_remaining == 3
    limiter.flush()
    # Spent since the refill, the refill applied, its amount: the store sets 4 - 1.
    assert writes.batches == [{"k": (1, midnight, 4)}]


def test_a_stale_stored_quota_is_refilled_on_first_sight(make: Callable[..., Limiter]) -> None:
    writes = Writes()
    limiter = make(writes)
    refill = Refill(100, "monthly", 31)
    stored = Quota(0, refill, datetime(2026, 10, 31, tzinfo=UTC))
    now = datetime(2026, 12, 5, tzinfo=UTC)  # November's refill (on the 30th) was missed
    assert limiter.admit("k", (), stored, 1, now).quota_remaining == 99
    limiter.flush()
    assert writes.batches == [{"k": (1, datetime(2026, 11, 30, tzinfo=UTC), 100)}]


def test_spends_are_written_in_batches_and_a_failed_batch_is_retried(
    make: Callable[..., Limiter],
) -> None:
    writes = Writes()
    limiter = make(writes)
    for _ in range(3):
        limiter.admit("k", (), Quota(10), 2, T0)
    writes.fail = True
    limiter.flush()
    writes.fail = False
    limiter.admit("k", (), Quota(10), 1, T0)
    limiter.flush()
    assert writes.batches == [{"k": (7, None, 0)}]
    limiter.flush()
    assert writes.batches == [{"k": (7, None, 0)}]  # nothing new: no write


def test_patching_the_quota_reaches_the_limiter(make: Callable[..., Limiter]) -> None:
    limiter = make()
    limiter.admit("k", (), Quota(1), 1, T0)
    assert limiter.admit("k", (), Quota(1), 1, T0).code == "USAGE_EXCEEDED"
    limiter.quota_add("k", 500)
    assert limiter.admit("k", (), Quota(1), 1, T0).quota_remaining == 499
    limiter.quota_set("k", Quota(3))
    # The next check starts from the key's new record.
    assert limiter.admit("k", (), Quota(3), 1, T0).quota_remaining == 2
    assert limiter.peek("k") == 2
    limiter.forget("k")
    assert limiter.peek("k") is None


def test_limits_are_per_key_and_idle_state_is_dropped() -> None:
    limiter = InProcessRateLimiter(Writes(), lambda: T0)
    for _ in range(3):
        limiter.admit("a", (BURST,), None, 1, T0 - timedelta(hours=1))
    assert limiter.admit("b", (BURST,), None, 1, T0 - timedelta(hours=1)).admitted
    limiter.flush()  # every TAT is in the past of the limiter's clock
    assert limiter._tats == {}
    assert limiter.admit("a", (BURST,), None, 3, T0).admitted
