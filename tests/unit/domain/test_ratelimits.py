"""The rules of per-key limits (domain/ratelimits.py): GCRA without a double burst at window
edges, cost, refills (daily, monthly, clamped), allowlists, override order and validation."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.errors import InvalidInput
from keyplane.domain.ratelimits import (
    NS,
    IpAllowlist,
    Quota,
    RateLimit,
    Refill,
    check_allowlist,
    check_cost,
    check_quota,
    check_ratelimits,
    gcra,
    instant,
    merge,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def _ns(seconds: float) -> int:
    return round(seconds * NS)


def _run(limit: RateLimit, times: list[float], cost: int = 1) -> list[bool]:
    tat: int | None = None
    answers = []
    for t in times:
        ok, new_tat, _ = gcra(limit, tat, _ns(t), cost)
        if ok:
            tat = new_tat
        answers.append(ok)
    return answers


def test_a_full_burst_passes_and_the_next_waits_for_one_interval() -> None:
    limit = RateLimit("burst", 10, 10)  # one unit drains per second
    assert _run(limit, [0.0] * 11) == [True] * 10 + [False]
    assert _run(limit, [0.0] * 10 + [0.999, 1.0]) == [True] * 10 + [False, True]


def test_the_edge_of_a_window_admits_no_second_burst() -> None:
    """A fixed window would let 10 through at 9.99 s and 10 more at 10.0 s; GCRA lets
    through only what drained in between."""
    limit = RateLimit("burst", 10, 10)
    times = [9.99] * 10 + [10.0] * 10
    assert sum(_run(limit, times)) == 10
    # Over any span of d seconds no more than the burst plus what drained in d gets
    # through (limit + d * limit / period), and past the first burst one per second.
    steady = [i * 0.1 for i in range(200)]  # 10 per second asked, 1 per second allowed
    admitted = [t for t, ok in zip(steady, _run(limit, steady), strict=True) if ok]
    for span in (1, 5, 10):
        for start in admitted:
            assert sum(1 for t in admitted if start <= t < start + span) <= 10 + span
    after_burst = admitted[10:]
    assert all(b - a > 0.95 for a, b in itertools.pairwise(after_burst))


def test_cost_spends_several_units_and_cost_zero_spends_none() -> None:
    limit = RateLimit("tokens", 100, 60)
    ok, tat, state = gcra(limit, None, 0.0, 60)
    assert ok
    assert state.remaining == 40
    ok, _, state = gcra(limit, tat, 0.0, 41)
    assert not ok
    assert state.remaining == 40
    assert state.retry_after == pytest.approx(0.6)
    ok, same, state = gcra(limit, tat, 0.0, 0)
    assert ok
    assert same == tat
    assert state.remaining == 40


def test_cost_zero_is_refused_when_a_cost_of_one_would_be() -> None:
    limit = RateLimit("one", 1, 60)
    ok, tat, _ = gcra(limit, None, 0, 1)
    assert ok
    ok, _, state = gcra(limit, tat, _ns(1.0), 0)
    assert not ok
    assert state.remaining == 0
    assert state.retry_after == pytest.approx(59.0)


def test_reset_seconds_is_when_the_limit_is_whole_again() -> None:
    limit = RateLimit("minute", 60, 60)
    _, _, state = gcra(limit, None, 0, 30)
    assert state.reset_seconds == pytest.approx(30.0)
    # Exact at today's instants too, where float seconds would lose a unit.
    now = instant(datetime.now(UTC))
    _, _, state = gcra(RateLimit("minute", 50, 60), None, now, 1)
    assert state.remaining == 49


@given(st.datetimes(timezones=st.just(UTC)))
def test_instant_is_the_exact_microsecond_of_any_aware_datetime(now: datetime) -> None:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert instant(now) == (now - epoch) // timedelta(microseconds=1) * 1000


def test_key_overrides_app_overrides_org_by_name() -> None:
    org = (RateLimit("burst", 100, 1), RateLimit("daily", 10_000, 86400))
    app = (RateLimit("burst", 50, 1),)
    key = (RateLimit("burst", 20, 1), RateLimit("hourly", 500, 3600))
    assert merge(org, app, key) == (
        RateLimit("burst", 20, 1),
        RateLimit("daily", 10_000, 86400),
        RateLimit("hourly", 500, 3600),
    )
    assert merge(org, app, ()) == (RateLimit("burst", 50, 1), RateLimit("daily", 10_000, 86400))


def test_a_daily_refill_falls_at_midnight_utc() -> None:
    refill = Refill(1000, "daily")
    assert refill.last_at(NOW) == datetime(2026, 11, 30, tzinfo=UTC)
    assert refill.next_at(NOW) == datetime(2026, 12, 1, tzinfo=UTC)
    quota = Quota(3, refill, datetime(2026, 11, 29, tzinfo=UTC))
    assert quota.current(NOW) == Quota(1000, refill, datetime(2026, 11, 30, tzinfo=UTC))
    assert quota.current(datetime(2026, 11, 29, 23, 59, tzinfo=UTC)) is quota


@pytest.mark.parametrize(
    ("day", "now", "last", "following"),
    [
        (1, datetime(2026, 11, 30, tzinfo=UTC), (2026, 11, 1), (2026, 12, 1)),
        (15, datetime(2026, 1, 10, tzinfo=UTC), (2025, 12, 15), (2026, 1, 15)),
        # day 31 in short months: the month's last day
        (31, datetime(2026, 2, 28, 1, tzinfo=UTC), (2026, 2, 28), (2026, 3, 31)),
        (31, datetime(2026, 4, 15, tzinfo=UTC), (2026, 3, 31), (2026, 4, 30)),
        (30, datetime(2028, 2, 29, tzinfo=UTC), (2028, 2, 29), (2028, 3, 30)),
    ],
)
def test_a_monthly_refill_clamps_its_day_to_short_months(
    day: int, now: datetime, last: tuple[int, int, int], following: tuple[int, int, int]
) -> None:
    refill = Refill(10, "monthly", day)
    assert refill.last_at(now) == datetime(*last, tzinfo=UTC)
    assert refill.next_at(now) == datetime(*following, tzinfo=UTC)


def test_allowlists_take_ipv4_ipv6_and_cidr_ranges() -> None:
    entries = check_allowlist("ip_allowlist", ["203.0.113.0/24", "2001:db8::1", "10.0.0.7/32"])
    assert entries == ("203.0.113.0/24", "2001:db8::1", "10.0.0.7")
    allowlist = IpAllowlist.of(entries)
    assert allowlist is not None
    assert allowlist.allows("203.0.113.77")
    assert allowlist.allows("::ffff:203.0.113.5")  # an IPv4-mapped IPv6 address
    assert allowlist.allows("2001:db8::1")
    assert allowlist.allows("10.0.0.7")
    assert not allowlist.allows("203.0.114.1")
    assert not allowlist.allows("2001:db8::2")
    assert not allowlist.allows(None)
    assert not allowlist.allows("not an address")
    assert IpAllowlist.of([]) is None


def _fields(exc: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [e.field for e in exc.value.errors]


def test_invalid_rate_limits_name_each_field() -> None:
    with pytest.raises(InvalidInput) as exc:
        check_ratelimits(
            "ratelimits",
            [
                {"name": "burst", "limit": 20, "period_seconds": 1},
                {"name": "burst", "limit": 0, "period_seconds": 0},
                {"name": "Bad Name", "limit": True, "period_seconds": 10**9},
                "nope",
                {"name": "x", "limit": 1, "period_seconds": 1, "extra": 1},
            ],
        )
    assert _fields(exc) == [
        "ratelimits[1].name",
        "ratelimits[1].limit",
        "ratelimits[1].period_seconds",
        "ratelimits[2].name",
        "ratelimits[2].limit",
        "ratelimits[2].period_seconds",
        "ratelimits[3]",
        "ratelimits[4].extra",
    ]
    with pytest.raises(InvalidInput, match="at most 10"):
        check_ratelimits(
            "ratelimits", [{"name": f"l{i}", "limit": 1, "period_seconds": 1} for i in range(11)]
        )
    with pytest.raises(InvalidInput):
        check_ratelimits("ratelimits", {"name": "burst"})


def test_quota_validation() -> None:
    quota = check_quota("quota", {"refill": {"amount": 50, "interval": "monthly"}}, NOW)
    assert quota == Quota(50, Refill(50, "monthly", 1), datetime(2026, 11, 1, tzinfo=UTC))
    assert check_quota("quota", {"remaining": 0}, NOW) == Quota(0)
    assert check_quota("quota", None, NOW) is None
    cases: list[tuple[object, list[str]]] = [
        ({}, ["quota.remaining"]),
        ({"remaining": -1}, ["quota.remaining"]),
        ({"remaining": 1, "other": 2}, ["quota.other"]),
        (
            {"remaining": 1, "refill": {"amount": 0, "interval": "weekly"}},
            [
                "quota.refill.amount",
                "quota.refill.interval",
            ],
        ),
        (
            {"refill": {"amount": 1, "interval": "daily", "day_of_month": 5}},
            ["quota.refill.day_of_month"],
        ),
        (
            {"refill": {"amount": 1, "interval": "monthly", "day_of_month": 32}},
            ["quota.refill.day_of_month"],
        ),
        ({"refill": "daily"}, ["quota.refill"]),
        ("lots", ["quota"]),
    ]
    for value, fields in cases:
        with pytest.raises(InvalidInput) as exc:
            check_quota("quota", value, NOW)
        assert _fields(exc) == fields, value


def test_cost_and_allowlist_validation() -> None:
    assert check_cost(0) == 0
    for bad in (-1, 1.5, True, "3", 10**7):
        with pytest.raises(InvalidInput, match="cost"):
            check_cost(bad)
    with pytest.raises(InvalidInput) as exc:
        check_allowlist("ip_allowlist", ["10.0.0.1", "example.com", 7, "10.0.0.0/33"])
    assert _fields(exc) == ["ip_allowlist[1]", "ip_allowlist[2]", "ip_allowlist[3]"]
    with pytest.raises(InvalidInput, match="at most 100"):
        check_allowlist("ip_allowlist", ["10.0.0.1"] * 101)
    with pytest.raises(InvalidInput):
        check_allowlist("ip_allowlist", "10.0.0.1")
