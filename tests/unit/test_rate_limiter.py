"""InProcessRateLimiter: every limit and the quota checked first, then all spent at once;
quota counts refilled on schedule and written back as spends, never absolute counts."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from keyplane.domain.ports import QuotaSpend
from keyplane.domain.ratelimits import Quota, RateLimit, Refill
from keyplane.memory import InProcessRateLimiter

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


def _limiter(writes: Writes | None = None) -> InProcessRateLimiter:
    return InProcessRateLimiter(writes or Writes(), lambda: T0)


def test_a_refused_check_spends_nothing_of_any_limit_or_quota() -> None:
    limiter = _limiter()
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


def test_quota_refuses_at_zero_and_leaves_the_rate_limits_unspent() -> None:
    limiter = _limiter()
    quota = Quota(2)
    assert limiter.admit("k", (BURST,), quota, 2, T0).quota_remaining == 0
    refused = limiter.admit("k", (BURST,), quota, 1, T0)
    assert refused.code == "USAGE_EXCEEDED"
    assert refused.limits[0].remaining == 1  # burst: 2 spent, not 3
    assert limiter.admit("k", (BURST,), quota, 0, T0).code == "USAGE_EXCEEDED"


def test_cost_beyond_what_remains_is_refused_whole() -> None:
    limiter = _limiter()
    assert limiter.admit("k", (), Quota(5), 6, T0).code == "USAGE_EXCEEDED"
    assert limiter.admit("k", (), Quota(5), 5, T0).quota_remaining == 0


def test_cost_zero_checks_without_spending() -> None:
    limiter = _limiter()
    for _ in range(5):
        answer = limiter.admit("k", (BURST,), Quota(1), 0, T0)
        assert answer.admitted
        assert answer.quota_remaining == 1
        assert answer.limits[0].remaining == 3


def test_a_daily_refill_sets_the_count_back_to_the_amount_at_midnight() -> None:
    writes = Writes()
    limiter = _limiter(writes)
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


def test_a_stale_stored_quota_is_refilled_on_first_sight() -> None:
    writes = Writes()
    limiter = _limiter(writes)
    refill = Refill(100, "monthly", 31)
    stored = Quota(0, refill, datetime(2026, 10, 31, tzinfo=UTC))
    now = datetime(2026, 12, 5, tzinfo=UTC)  # November's refill (on the 30th) was missed
    assert limiter.admit("k", (), stored, 1, now).quota_remaining == 99
    limiter.flush()
    assert writes.batches == [{"k": (1, datetime(2026, 11, 30, tzinfo=UTC), 100)}]


def test_spends_are_written_in_batches_and_a_failed_batch_is_retried() -> None:
    writes = Writes()
    limiter = _limiter(writes)
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


def test_patching_the_quota_reaches_the_limiter() -> None:
    limiter = _limiter()
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
    limiter = _limiter()
    for _ in range(3):
        limiter.admit("a", (BURST,), None, 1, T0 - timedelta(hours=1))
    assert limiter.admit("b", (BURST,), None, 1, T0 - timedelta(hours=1)).admitted
    limiter.flush()  # every TAT is in the past of the limiter's clock
    assert limiter._tats == {}
    assert limiter.admit("a", (BURST,), None, 3, T0).admitted
