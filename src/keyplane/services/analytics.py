"""Usage analytics: series of counts for a key, an app or the whole organization, and the
busiest keys. Reads only; the counts are written by the UsageCounter (domain/usage.py)."""

from __future__ import annotations

from datetime import datetime

from keyplane.domain.errors import FieldError, InvalidInput, NotFound
from keyplane.domain.ports import Clock, Store, UsageRepository
from keyplane.domain.usage import Granularity, KeyUsage, Retention, UsagePoint, UsageRange
from keyplane.services.common import Principal


class AnalyticsService:
    def __init__(self, store: Store, usage: UsageRepository, clock: Clock) -> None:
        self._store = store
        self._usage = usage
        self._clock = clock

    def usage(
        self,
        principal: Principal,
        *,
        granularity: Granularity,
        start: datetime | None,
        end: datetime | None,
        key_id: str | None = None,
        app_id: str | None = None,
    ) -> tuple[UsageRange, list[UsagePoint]]:
        """Every bucket of the range, oldest first, with the counts of those that have any
        (``{}`` for the others): a chart draws gaps as zeros without guessing the step."""
        if key_id is not None and app_id is not None:
            raise InvalidInput(FieldError("app_id", "give key_id or app_id, not both"))
        span = UsageRange.of(granularity, start, end, self._clock())
        # Another organization's key or app is a 404, never an empty series: a series of
        # zeros would confirm nothing, but the API answers the same way everywhere.
        with self._store.read() as tx:
            if key_id is not None and tx.keys.get(principal.org_id, key_id) is None:
                raise NotFound("key", key_id)
            if app_id is not None and tx.apps.get(principal.org_id, app_id) is None:
                raise NotFound("app", app_id)
        found = {
            p.start: p.counts
            for p in self._usage.series(principal.org_id, span, key_id=key_id, app_id=app_id)
        }
        return span, [UsagePoint(start, found.get(start, {})) for start in span.starts()]

    def top_keys(
        self,
        principal: Principal,
        *,
        granularity: Granularity,
        start: datetime | None,
        end: datetime | None,
        limit: int,
    ) -> tuple[UsageRange, list[KeyUsage]]:
        """The keys with the most answers in the range, busiest first (ties by id)."""
        span = UsageRange.of(granularity, start, end, self._clock())
        return span, self._usage.top_keys(principal.org_id, span, limit)


class UsageRetentionJob:
    """Deletes usage rows past their granularity's retention (a Job). Idempotent: several
    nodes running it at once only repeat an empty delete."""

    name = "usage-retention"

    def __init__(self, usage: UsageRepository, retention: Retention, interval: float) -> None:
        self._usage = usage
        self._retention = retention
        self.interval: float | None = interval

    def run(self, now: datetime) -> int:
        return self._usage.apply_retention(self._retention, now)
