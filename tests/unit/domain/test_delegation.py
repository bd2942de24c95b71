"""Delegation rules: a child is never more than its parent (scopes, expiry, limits, depth)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_scopes import EVERY_SCOPE, scope_sets

from keyplane.domain.delegation import (
    CHILD_LIFETIME_DEFAULT,
    CHILD_LIFETIME_MAX,
    DepthExceeded,
    check_depth,
    child_expiry,
    child_scopes,
    limit_no_looser,
    looser_quota,
    looser_ratelimits,
    refill_no_looser,
)
from keyplane.domain.errors import Escalation, InvalidInput
from keyplane.domain.ratelimits import Quota, RateLimit, Refill
from keyplane.domain.scopes import ScopeSet

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)

names = st.sampled_from(["burst", "minute", "daily"])
limits = st.builds(
    RateLimit, names, st.integers(1, 1000), st.sampled_from([1, 10, 60, 3600, 86400])
)
limit_lists = st.lists(limits, max_size=4, unique_by=lambda r: r.name)
refills = st.none() | st.builds(
    Refill, st.integers(1, 1000), st.sampled_from(["daily", "monthly"]), st.integers(1, 28)
)
quotas = st.none() | st.builds(Quota, st.integers(0, 1000), refills)


def _admits_over(limit: RateLimit, seconds: Fraction) -> Fraction:
    """The most GCRA lets through in any span of ``seconds``: the burst plus what drains."""
    return limit.limit + Fraction(limit.limit, limit.period_seconds) * seconds


@given(scope_sets, scope_sets)
def test_a_child_gets_what_it_asks_exactly_when_the_parent_covers_it(
    requested: ScopeSet, parent: ScopeSet
) -> None:
    if requested.issubset(parent):
        granted = child_scopes(requested, parent)
        assert all(parent.covers(s) for s in EVERY_SCOPE if granted.covers(s))
    else:
        with pytest.raises(Escalation) as refused:
            child_scopes(requested, parent)
        assert refused.value.scopes
        assert all(not parent.covers(s) for s in refused.value.scopes)


@given(scope_sets)
def test_a_child_asking_nothing_gets_all_of_the_parents_scopes(parent: ScopeSet) -> None:
    assert child_scopes(None, parent) == parent


@given(limits)
def test_no_looser_is_reflexive(limit: RateLimit) -> None:
    assert limit_no_looser(limit, limit)


@given(limits, limits, limits)
def test_no_looser_is_transitive(a: RateLimit, b: RateLimit, c: RateLimit) -> None:
    if limit_no_looser(a, b) and limit_no_looser(b, c):
        assert limit_no_looser(a, c)


@given(limits, limits, st.fractions(min_value=0, max_value=10**6))
def test_a_no_looser_limit_admits_no_more_in_any_span(
    child: RateLimit, parent: RateLimit, seconds: Fraction
) -> None:
    if limit_no_looser(child, parent):
        assert _admits_over(child, seconds) <= _admits_over(parent, seconds)


@given(limits, limits)
def test_a_looser_limit_admits_more_in_some_span(child: RateLimit, parent: RateLimit) -> None:
    if not limit_no_looser(child, parent):
        # A bigger burst shows at once; a faster rate, given long enough.
        spans = (Fraction(0), Fraction(10**9))
        assert any(_admits_over(child, s) > _admits_over(parent, s) for s in spans)


@given(limit_lists)
def test_the_parents_own_limits_are_never_looser(parent: list[RateLimit]) -> None:
    assert looser_ratelimits(parent, parent) == []


@given(limit_lists, limit_lists)
def test_each_parent_limit_missing_or_looser_is_named(
    child: list[RateLimit], parent: list[RateLimit]
) -> None:
    mine = {r.name: r for r in child}
    expected = [p for p in parent if p.name not in mine or not limit_no_looser(mine[p.name], p)]
    errors = looser_ratelimits(child, parent)
    assert len(errors) == len(expected)
    assert all(
        e.field == "ratelimits" and repr(p.name) in e.message
        for e, p in zip(errors, expected, strict=True)
    )


@given(refills, refills, refills)
def test_refill_no_looser_is_a_preorder(
    a: Refill | None, b: Refill | None, c: Refill | None
) -> None:
    assert refill_no_looser(a, a)
    if refill_no_looser(a, b) and refill_no_looser(b, c):
        assert refill_no_looser(a, c)


@given(quotas)
def test_the_parents_quota_is_never_looser_than_itself(quota: Quota | None) -> None:
    assert looser_quota(quota, quota) == []


@given(quotas, quotas)
def test_a_quota_is_refused_exactly_when_it_is_more_or_missing(
    child: Quota | None, parent: Quota | None
) -> None:
    fields = {e.field for e in looser_quota(child, parent)}
    if parent is None:
        assert fields == set()
    elif child is None:
        assert fields == {"quota"}
    else:
        assert ("quota.remaining" in fields) == (child.remaining > parent.remaining)
        assert ("quota.refill" in fields) == (not refill_no_looser(child.refill, parent.refill))


def test_a_monthly_refill_is_stricter_than_a_daily_one_of_the_same_amount() -> None:
    assert refill_no_looser(Refill(10, "monthly"), Refill(10, "daily"))
    assert not refill_no_looser(Refill(10, "daily"), Refill(10, "monthly"))
    assert not refill_no_looser(Refill(1, "daily"), None)
    assert refill_no_looser(None, Refill(1, "daily"))


@given(
    st.none() | st.timedeltas(timedelta(seconds=1), timedelta(days=400)),
    st.none() | st.integers(-10, 40 * 86400),
)
def test_a_childs_expiry_is_in_the_future_within_the_maximum_and_the_parents(
    parent_in: timedelta | None, expires_in: int | None
) -> None:
    parent = NOW + parent_in if parent_in is not None else None
    asked = NOW + timedelta(seconds=expires_in) if expires_in is not None else None
    if asked is not None and (
        asked <= NOW or asked > NOW + CHILD_LIFETIME_MAX or (parent is not None and asked > parent)
    ):
        with pytest.raises(InvalidInput) as refused:
            child_expiry(NOW, parent, expires_in=expires_in)
        assert refused.value.errors[0].field == "expires_in"
        return
    expiry = child_expiry(NOW, parent, expires_in=expires_in)
    assert NOW < expiry <= NOW + CHILD_LIFETIME_MAX
    assert parent is None or expiry <= parent
    if expires_in is None:
        assert expiry == min(NOW + CHILD_LIFETIME_DEFAULT, parent or NOW + CHILD_LIFETIME_DEFAULT)


@pytest.mark.parametrize(
    ("given_at", "field", "message"),
    [
        (NOW - timedelta(seconds=1), "expires_at", "future"),
        (NOW + timedelta(days=31), "expires_at", "30 days"),
        (NOW.replace(tzinfo=None) + timedelta(hours=1), "expires_at", "time zone"),
        (NOW + timedelta(hours=3), "expires_at", "parent"),
    ],
)
def test_an_expiry_out_of_bounds_names_its_reason(
    given_at: datetime, field: str, message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        child_expiry(NOW, NOW + timedelta(hours=2), expires_at=given_at)
    assert refused.value.errors[0].field == field
    assert message in refused.value.errors[0].message


def test_expires_at_and_expires_in_together_are_refused() -> None:
    with pytest.raises(InvalidInput):
        child_expiry(NOW, None, expires_at=NOW + timedelta(minutes=5), expires_in=60)


@pytest.mark.parametrize(("parent_depth", "max_depth"), [(0, 2), (1, 2), (0, 1)])
def test_a_child_is_one_deeper_than_its_parent_within_the_maximum(
    parent_depth: int, max_depth: int
) -> None:
    assert check_depth("key_x", parent_depth, max_depth) == parent_depth + 1


@pytest.mark.parametrize(("parent_depth", "max_depth"), [(2, 2), (1, 1), (0, 0)])
def test_a_key_at_the_maximum_depth_cannot_delegate(parent_depth: int, max_depth: int) -> None:
    with pytest.raises(DepthExceeded) as refused:
        check_depth("key_x", parent_depth, max_depth)
    assert "KEYPLANE_MAX_KEY_DEPTH" in str(refused.value)
