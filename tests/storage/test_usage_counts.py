"""SqlUsageRepository on SQLite and PostgreSQL: batches add to the minute, hour and day rows,
series and top keys read them back, retention deletes by granularity and is idempotent."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from keyplane.domain.usage import Retention, UsagePoint, UsageRange, UsageTally
from keyplane.storage.engine import make_engine, migrate
from keyplane.storage.tables import usage_counts
from keyplane.storage.usage import SqlUsageRepository

T0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)
HOUR = timedelta(hours=1)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def repo(engine: Engine) -> SqlUsageRepository:
    return SqlUsageRepository(engine)


def tally(
    key_id: str | None,
    outcome: str,
    minute: datetime,
    count: int = 1,
    *,
    org_id: str = "org_a",
    app_id: str | None = None,
) -> UsageTally:
    return UsageTally(org_id, key_id, app_id, outcome, minute, count)


def span(granularity: str, start: datetime, end: datetime) -> UsageRange:
    return UsageRange(start, end, granularity)  # type: ignore[arg-type]


def test_batches_add_to_the_same_minute_instead_of_replacing_it(repo: SqlUsageRepository) -> None:
    repo.add([tally("key_1", "VALID", T0, 3), tally("key_1", "INSUFFICIENT_SCOPE", T0, 2)])
    repo.add([tally("key_1", "VALID", T0, 4), tally("key_1", "VALID", T0 + MIN, 1)])

    points = repo.series("org_a", span("minute", T0, T0 + HOUR), key_id="key_1", app_id=None)

    assert points == [
        UsagePoint(T0, {"INSUFFICIENT_SCOPE": 2, "VALID": 7}),
        UsagePoint(T0 + MIN, {"VALID": 1}),
    ]


def test_one_batch_may_name_the_same_row_twice(repo: SqlUsageRepository) -> None:
    # Two records of one key (the key changed between two counts) flush as two tallies.
    repo.add([tally("key_1", "VALID", T0, 1), tally("key_1", "VALID", T0, 2)])

    points = repo.series("org_a", span("minute", T0, T0 + MIN), key_id="key_1", app_id=None)

    assert points == [UsagePoint(T0, {"VALID": 3})]


def test_minutes_roll_up_into_their_hour_and_day(repo: SqlUsageRepository) -> None:
    repo.add([tally("key_1", "VALID", T0 + 5 * MIN, 2), tally("key_1", "VALID", T0 + 59 * MIN)])
    repo.add([tally("key_1", "VALID", T0 + HOUR), tally("key_1", "EXPIRED", T0 + HOUR)])
    day = T0.replace(hour=0)

    hours = repo.series("org_a", span("hour", day, day + 24 * HOUR), key_id="key_1", app_id=None)
    days = repo.series("org_a", span("day", day, day + 24 * HOUR), key_id=None, app_id=None)

    assert hours == [
        UsagePoint(T0, {"VALID": 3}),
        UsagePoint(T0 + HOUR, {"EXPIRED": 1, "VALID": 1}),
    ]
    assert days == [UsagePoint(day, {"EXPIRED": 1, "VALID": 4})]


def test_series_filter_by_key_by_app_and_by_organization(repo: SqlUsageRepository) -> None:
    repo.add(
        [
            tally("key_1", "VALID", T0, 1, app_id="app_1"),
            tally("key_2", "VALID", T0, 2, app_id="app_1"),
            tally("key_3", "VALID", T0, 4),
            tally(None, "NOT_FOUND", T0, 8),
            tally("key_9", "VALID", T0, 16, org_id="org_b"),
        ]
    )
    whole = span("minute", T0, T0 + MIN)

    def total(**filters: str | None) -> int:
        points = repo.series("org_a", whole, **{"key_id": None, "app_id": None, **filters})
        return sum(n for p in points for n in p.counts.values())

    assert total(key_id="key_1") == 1
    assert total(app_id="app_1") == 3
    assert total() == 15  # the organization's NOT_FOUND answers too, never org_b's
    assert total(key_id="key_9") == 0


def test_top_keys_rank_by_total_and_leave_out_answers_about_no_key(
    repo: SqlUsageRepository,
) -> None:
    repo.add(
        [
            tally("key_1", "VALID", T0, 5, app_id="app_1"),
            tally("key_1", "INSUFFICIENT_SCOPE", T0 + HOUR, 1, app_id="app_1"),
            tally("key_2", "VALID", T0, 9),
            tally("key_3", "DISABLED", T0, 2),
            tally(None, "NOT_FOUND", T0, 100),
            tally("key_9", "VALID", T0, 50, org_id="org_b"),
        ]
    )
    day = T0.replace(hour=0)

    top = repo.top_keys("org_a", span("day", day, day + 24 * HOUR), limit=2)

    assert [(k.key_id, k.app_id, k.total, k.counts) for k in top] == [
        ("key_2", None, 9, {"VALID": 9}),
        ("key_1", "app_1", 6, {"VALID": 5, "INSUFFICIENT_SCOPE": 1}),
    ]
    assert repo.top_keys("org_a", span("day", day - 24 * HOUR, day), limit=10) == []


def rows(engine: Engine) -> dict[str, int]:
    c = usage_counts.c
    query = select(c.granularity, func.count()).group_by(c.granularity)
    with engine.connect() as conn:
        return {str(row[0]): int(row[1]) for row in conn.execute(query)}


def test_retention_keeps_minutes_7_days_hours_90_days_and_days_2_years(
    repo: SqlUsageRepository, engine: Engine
) -> None:
    now = T0
    repo.add(
        [
            tally("key_1", "VALID", now - timedelta(days=7) + MIN),  # every row kept
            tally("key_2", "VALID", now - timedelta(days=8)),  # hour and day kept
            tally("key_3", "VALID", now - timedelta(days=91)),  # day kept
            tally("key_4", "VALID", now - timedelta(days=740)),  # nothing kept
        ]
    )
    assert rows(engine) == {"minute": 4, "hour": 4, "day": 4}

    deleted = repo.apply_retention(Retention(), now)

    assert deleted == 3 + 2 + 1
    assert rows(engine) == {"minute": 1, "hour": 2, "day": 3}
    assert repo.apply_retention(Retention(), now) == 0  # idempotent
    assert rows(engine) == {"minute": 1, "hour": 2, "day": 3}


def test_retention_follows_the_settings(repo: SqlUsageRepository, engine: Engine) -> None:
    repo.add([tally("key_1", "VALID", T0 - timedelta(days=2))])

    repo.apply_retention(Retention(minute=timedelta(days=1), hour=timedelta(days=1)), T0)

    assert rows(engine) == {"day": 1}
