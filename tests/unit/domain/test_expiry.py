"""The expiry rules: the lifecycle settings' checks, which warning threshold is due for an
expiry, and when the console says "expires soon" or "rotation due"."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.errors import InvalidInput
from keyplane.domain.expiry import (
    check_retention_days,
    check_rotation_period_days,
    check_warning_days,
    expires_soon,
    rotation_due,
    warning_bands,
)
from keyplane.domain.models import ApiKey, Organization

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ORG = Organization("org_1", "Acme", False, None, NOW - 400 * DAY, NOW - 400 * DAY)
KEY = ApiKey(
    id="key_1",
    org_id="org_1",
    name="ci",
    description="",
    digest="0" * 64,
    digest_version=1,
    masked_key="kp_live_…abcd",
    environment="live",
    scopes=(),
    app_id=None,
    profile_id=None,
    metadata={},
    stored_status="active",
    created_at=NOW - 10 * DAY,
    created_by="usr_1",
    updated_at=NOW - 10 * DAY,
)


@pytest.mark.parametrize(
    ("given_days", "stored"),
    [((7, 1), (7, 1)), ((1, 7), (7, 1)), ((1, 30, 14), (30, 14, 1)), ((), ()), ((365,), (365,))],
)
def test_warning_days_are_stored_largest_first(
    given_days: tuple[int, ...], stored: tuple[int, ...]
) -> None:
    assert check_warning_days(given_days) == stored


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ((7, 7), "repeat"),
        ((0,), "between 1 and 365"),
        ((366,), "between 1 and 365"),
        ((True,), "between 1 and 365"),
        ((1, 2, 3, 4, 5, 6), "at most 5"),
    ],
)
def test_wrong_warning_days_are_refused_naming_the_field(value: tuple[int, ...], says: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_warning_days(value)
    [error] = raised.value.errors
    assert error.field == "expiry_warning_days"
    assert says in error.message


@pytest.mark.parametrize("value", [-1, 3651, True])
def test_a_wrong_retention_is_refused(value: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_retention_days(value)
    assert raised.value.errors[0].field == "expired_key_retention_days"


@pytest.mark.parametrize("value", [0, 3651, False])
def test_a_wrong_rotation_period_is_refused(value: int) -> None:
    with pytest.raises(InvalidInput) as raised:
        check_rotation_period_days(value)
    assert raised.value.errors[0].field == "rotation_period_days"


def test_sensible_settings_pass_unchanged() -> None:
    assert check_retention_days(0) == 0
    assert check_rotation_period_days(None) is None
    assert check_rotation_period_days(90) == 90


def test_each_threshold_covers_the_expiries_up_to_it_from_the_next_smaller_one() -> None:
    assert warning_bands((7, 1), NOW) == [(1, NOW, NOW + DAY), (7, NOW + DAY, NOW + 7 * DAY)]
    assert warning_bands((), NOW) == []


@given(
    st.lists(st.integers(1, 365), min_size=1, max_size=5, unique=True),
    st.integers(1, 365 * 24),
)
def test_an_expiry_within_a_threshold_is_in_exactly_the_band_of_the_smallest_covering_it(
    thresholds: list[int], hours_left: int
) -> None:
    expires_at = NOW + timedelta(hours=hours_left)
    bands = [
        days for days, after, until in warning_bands(thresholds, NOW) if after < expires_at <= until
    ]
    covering = [t for t in thresholds if expires_at <= NOW + t * DAY]
    assert bands == ([min(covering)] if covering else [])


@pytest.mark.parametrize(
    ("expires_in", "warning_days", "rotated", "soon"),
    [
        (3 * DAY, (7, 1), False, True),
        (7 * DAY, (7, 1), False, True),
        (8 * DAY, (7, 1), False, False),
        (8 * DAY, (1, 30), False, True),
        (3 * DAY, (), False, False),
        (3 * DAY, (7, 1), True, False),
        (-DAY, (7, 1), False, False),
        (None, (7, 1), False, False),
    ],
    ids=["3d", "7d", "8d", "8d-of-30", "no-thresholds", "rotated-out", "expired", "never"],
)
def test_expires_soon_is_within_the_first_threshold(
    expires_in: timedelta | None, warning_days: tuple[int, ...], rotated: bool, soon: bool
) -> None:
    key = replace(
        KEY,
        expires_at=NOW + expires_in if expires_in is not None else None,
        rotated_to="key_2" if rotated else None,
    )
    assert expires_soon(key, replace(ORG, expiry_warning_days=warning_days), NOW) is soon


@pytest.mark.parametrize(
    ("period", "expires_in", "rotated", "due"),
    [
        (7, None, False, True),
        (10, None, False, True),
        (11, None, False, False),
        (None, None, False, False),
        (7, None, True, False),
        (7, -DAY, False, False),
        (7, DAY, False, True),
    ],
    ids=["older", "exactly", "younger", "no-period", "rotated-out", "expired", "expiring"],
)
def test_rotation_due_is_past_the_period_for_a_live_key(
    period: int | None, expires_in: timedelta | None, rotated: bool, due: bool
) -> None:
    key = replace(
        KEY,
        expires_at=NOW + expires_in if expires_in is not None else None,
        rotated_to="key_2" if rotated else None,
    )
    assert rotation_due(key, replace(ORG, rotation_period_days=period), NOW) is due
