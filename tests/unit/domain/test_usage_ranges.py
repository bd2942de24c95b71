"""Usage ranges and buckets: what a series covers, and which ranges are refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.errors import InvalidInput
from keyplane.domain.usage import (
    GRANULARITIES,
    STEP,
    Granularity,
    Retention,
    UsageRange,
    bucket_start,
)

NOW = datetime(2026, 11, 30, 12, 34, 56, 789, tzinfo=UTC)


@pytest.mark.parametrize(
    ("granularity", "start"),
    [
        ("minute", datetime(2026, 11, 30, 12, 34, tzinfo=UTC)),
        ("hour", datetime(2026, 11, 30, 12, tzinfo=UTC)),
        ("day", datetime(2026, 11, 30, tzinfo=UTC)),
    ],
)
def test_bucket_start_rounds_down_to_the_granularity(
    granularity: Granularity, start: datetime
) -> None:
    assert bucket_start(NOW, granularity) == start


@given(
    at=st.datetimes(
        min_value=datetime(2020, 1, 1),  # noqa: DTZ001 - hypothesis bounds are naive
        max_value=datetime(2040, 1, 1),  # noqa: DTZ001
        timezones=st.just(UTC),
    ),
    granularity=st.sampled_from(GRANULARITIES),
)
def test_a_time_lies_in_its_bucket(at: datetime, granularity: Granularity) -> None:
    start = bucket_start(at, granularity)
    assert start <= at < start + STEP[granularity]
    assert bucket_start(start, granularity) == start


def test_a_range_rounds_from_down_and_lists_every_bucket_before_to() -> None:
    span = UsageRange.of(
        "hour", NOW - timedelta(hours=2), datetime(2026, 11, 30, 12, tzinfo=UTC), NOW
    )

    assert span.starts() == [
        datetime(2026, 11, 30, 10, tzinfo=UTC),
        datetime(2026, 11, 30, 11, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("granularity", "span"),
    [("minute", timedelta(hours=1)), ("hour", timedelta(days=1)), ("day", timedelta(days=30))],
)
def test_a_range_defaults_to_a_span_before_now(granularity: Granularity, span: timedelta) -> None:
    checked = UsageRange.of(granularity, None, None, NOW)

    assert checked.end == NOW
    assert checked.start == bucket_start(NOW - span, granularity)


@pytest.mark.parametrize(
    ("granularity", "start", "end", "field", "reason"),
    [
        ("hour", NOW, NOW - timedelta(hours=1), "from", "must be before 'to'"),
        ("minute", NOW, NOW, "from", "must be before 'to'"),
        ("minute", NOW - timedelta(days=2), NOW, "to", "at most 1 day;"),
        ("hour", NOW - timedelta(days=63), NOW, "to", "at most 62 days"),
        ("day", NOW - timedelta(days=800), NOW, "to", "at most 731 days"),
    ],
)
def test_a_bad_range_is_refused_naming_the_field(
    granularity: Granularity, start: datetime, end: datetime, field: str, reason: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        UsageRange.of(granularity, start, end, NOW)

    (error,) = refused.value.errors
    assert error.field == field
    assert reason in error.message


def test_a_range_given_in_another_zone_is_bucketed_in_utc() -> None:
    india = timezone(timedelta(hours=5, minutes=30))
    start = datetime(2026, 11, 30, 18, 45, tzinfo=india)  # 13:15 UTC

    span = UsageRange.of("hour", start, start + timedelta(hours=2), NOW)

    assert span.start == datetime(2026, 11, 30, 13, tzinfo=UTC)
    assert span.starts()[0].utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (None, datetime(1, 1, 1, tzinfo=UTC)),
        (datetime(9999, 12, 31, 22, tzinfo=UTC), datetime(9999, 12, 31, 23, tzinfo=UTC)),
    ],
)
def test_a_range_at_the_ends_of_time_is_refused_not_an_overflow(
    start: datetime | None, end: datetime
) -> None:
    with pytest.raises(InvalidInput) as refused:
        UsageRange.of("day", start, end, NOW)

    assert refused.value.errors[0].field == "to"


def test_retention_cutoffs_are_bucket_starts_per_granularity() -> None:
    cutoffs = Retention().cutoffs(NOW)

    assert cutoffs == {
        "minute": datetime(2026, 11, 23, 12, 34, tzinfo=UTC),
        "hour": datetime(2026, 9, 1, 12, tzinfo=UTC),
        "day": datetime(2024, 11, 30, tzinfo=UTC),
    }
