"""Usage analytics: counts of verifications and key-authenticated calls, per key, per time
bucket, per outcome.

Counts are taken per minute on the hot path and written in batches; each batch is added to
the minute, hour and day rows at once (rolled up as it is written), so the hourly and daily
series never wait for a job and can never count a minute twice. What a job still does is
retention: minute rows go after 7 days, hourly after 90, daily after 2 years (settings).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from keyplane.domain.errors import FieldError, InvalidInput

Granularity = Literal["minute", "hour", "day"]
GRANULARITIES: Final[tuple[Granularity, ...]] = ("minute", "hour", "day")
STEP: Final[dict[Granularity, timedelta]] = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
# The longest range one request may ask for: at most ~1,500 points per series.
MAX_SPAN: Final[dict[Granularity, timedelta]] = {
    "minute": timedelta(days=1),
    "hour": timedelta(days=62),
    "day": timedelta(days=731),
}
# What ``from`` defaults to, counted back from ``to``.
DEFAULT_SPAN: Final[dict[Granularity, timedelta]] = {
    "minute": timedelta(hours=1),
    "hour": timedelta(days=1),
    "day": timedelta(days=30),
}
TOP_KEYS_MAX: Final = 100


def bucket_start(at: datetime, granularity: Granularity) -> datetime:
    """The start of the bucket holding ``at`` (UTC buckets; days start at 00:00 UTC)."""
    if granularity == "minute":
        return at.replace(second=0, microsecond=0)
    if granularity == "hour":
        return at.replace(minute=0, second=0, microsecond=0)
    return at.replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass(frozen=True, slots=True)
class UsageTally:
    """``count`` answers with ``outcome`` in the minute starting at ``minute``.

    ``key_id`` is None for NOT_FOUND answers about a key that does not exist (or belongs to
    another organization): they count in the asking organization, against no key.
    """

    org_id: str
    key_id: str | None
    app_id: str | None
    outcome: str
    minute: datetime
    count: int


@dataclass(frozen=True, slots=True)
class UsagePoint:
    start: datetime
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class KeyUsage:
    key_id: str
    app_id: str | None
    total: int
    counts: dict[str, int]


@dataclass(frozen=True, slots=True)
class Retention:
    """How long rows of each granularity are kept."""

    minute: timedelta = timedelta(days=7)
    hour: timedelta = timedelta(days=90)
    day: timedelta = timedelta(days=730)

    def cutoffs(self, now: datetime) -> dict[Granularity, datetime]:
        """Per granularity, the bucket start before which rows are deleted."""
        return {
            "minute": bucket_start(now - self.minute, "minute"),
            "hour": bucket_start(now - self.hour, "hour"),
            "day": bucket_start(now - self.day, "day"),
        }


@dataclass(frozen=True, slots=True)
class UsageRange:
    """A checked range: buckets of ``granularity`` whose start is in [start, end)."""

    start: datetime
    end: datetime
    granularity: Granularity

    @classmethod
    def of(
        cls,
        granularity: Granularity,
        start: datetime | None,
        end: datetime | None,
        now: datetime,
    ) -> UsageRange:
        """``from`` is rounded down to its bucket (in UTC, whatever zone it was given in);
        InvalidInput names the field at fault."""
        end = end.astimezone(UTC) if end is not None else now
        try:
            start = start.astimezone(UTC) if start is not None else end - DEFAULT_SPAN[granularity]
            end + MAX_SPAN[granularity]  # raises when the buckets' ends would not be datetimes
        except OverflowError:
            raise InvalidInput(FieldError("to", "is too far from today")) from None
        if start >= end:
            raise InvalidInput(FieldError("from", "must be before 'to'"))
        start = bucket_start(start, granularity)
        if end - start > MAX_SPAN[granularity]:
            days = MAX_SPAN[granularity].days
            span = "1 day" if days == 1 else f"{days} days"
            article = "an" if granularity == "hour" else "a"
            raise InvalidInput(
                FieldError(
                    "to",
                    f"{article} {granularity} series spans at most {span}; ask for a shorter "
                    "range or a coarser granularity",
                )
            )
        return cls(start, end, granularity)

    def starts(self) -> list[datetime]:
        step = STEP[self.granularity]
        points = []
        at = self.start
        while at < self.end:
            points.append(at)
            at += step
        return points
