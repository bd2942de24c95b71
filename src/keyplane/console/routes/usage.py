"""Usage: the organization's verifications and key-authenticated calls over time by outcome,
its refusals by code and its busiest keys; and the chart the key's and the app's pages show.

A chart's numbers reach the browser as a JSON data block (``<script type="application/json">``)
that static/usage.js draws with the vendored uPlot: the Content-Security-Policy allows no
inline script, and a data block is not one. The page also renders the same numbers as text
and a table, for screen readers and for browsers without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from fastapi import APIRouter, Response

from keyplane.console.context import Console, SignedIn
from keyplane.domain.errors import FieldError, InvalidInput
from keyplane.domain.usage import (
    GRANULARITIES,
    STEP,
    Granularity,
    KeyUsage,
    UsagePoint,
    UsageRange,
    bucket_start,
)
from keyplane.domain.verification import CODES

router = APIRouter(prefix="/console/usage")

# The ranges the page offers, each ending with the current bucket.
RANGES: Final[dict[str, tuple[str, timedelta]]] = {
    "1h": ("Last hour", timedelta(hours=1)),
    "24h": ("Last day", timedelta(days=1)),
    "7d": ("Last 7 days", timedelta(days=7)),
    "30d": ("Last 30 days", timedelta(days=30)),
    "90d": ("Last 90 days", timedelta(days=90)),
}
DEFAULT_RANGE: Final = "24h"
DEFAULT_GRANULARITY: Final[Granularity] = "hour"
TOP_KEYS: Final = 10
_GRANULARITIES: Final[dict[str, Granularity]] = {g: g for g in GRANULARITIES}


@dataclass(frozen=True, slots=True)
class OutcomeSeries:
    outcome: str
    counts: list[int]
    total: int


@dataclass(frozen=True, slots=True)
class UsageChart:
    """Answers per bucket of a range, one series per outcome that occurs in it."""

    span: UsageRange
    starts: list[datetime]
    series: list[OutcomeSeries]

    @classmethod
    def of(cls, span: UsageRange, points: list[UsagePoint]) -> UsageChart:
        """Outcomes in the verification codes' order (VALID first), then any other in
        alphabetical order, so an outcome keeps its place and colour from chart to chart."""
        seen = {outcome for point in points for outcome, n in point.counts.items() if n}
        outcomes = [c for c in CODES if c in seen] + sorted(seen.difference(CODES))
        series = []
        for outcome in outcomes:
            counts = [point.counts.get(outcome, 0) for point in points]
            series.append(OutcomeSeries(outcome, counts, sum(counts)))
        return cls(span, [point.start for point in points], series)

    @property
    def total(self) -> int:
        return sum(s.total for s in self.series)

    def rows(self) -> list[tuple[datetime, list[int], int]]:
        """The buckets with any answers, as table rows: start, count per series, total."""
        rows = []
        for index, start in enumerate(self.starts):
            counts = [s.counts[index] for s in self.series]
            if any(counts):
                rows.append((start, counts, sum(counts)))
        return rows

    def summary(self) -> str:
        """One sentence with the totals, busiest outcome first: the chart's text alternative."""
        ranked = sorted(self.series, key=lambda s: -s.total)
        return ", ".join(f"{s.total:,} {s.outcome}" for s in ranked)

    def data(self) -> dict[str, object]:
        """What usage.js draws: bucket starts in Unix seconds (UTC), a series per outcome."""
        return {
            "granularity": self.span.granularity,
            "step": int(STEP[self.span.granularity].total_seconds()),
            "times": [int(start.timestamp()) for start in self.starts],
            "series": [
                {"outcome": s.outcome, "counts": s.counts, "total": s.total} for s in self.series
            ],
        }


@router.get("")
def usage(console: SignedIn) -> Response:
    console.require("analytics:read")
    params = console.request.query_params
    values = {
        "range": params.get("range") or DEFAULT_RANGE,
        "granularity": params.get("granularity") or DEFAULT_GRANULARITY,
    }
    chart: UsageChart | None = None
    top: list[KeyUsage] = []
    errors: list[FieldError] = []
    try:
        chart = _chart(console, values["range"], values["granularity"])
        _, top = console.kp.analytics.top_keys(
            console.principal,
            granularity=chart.span.granularity,
            start=chart.span.start,
            end=chart.span.end,
            limit=TOP_KEYS,
        )
    except InvalidInput as exc:
        errors = exc.errors
    refused = [s for s in chart.series if s.outcome != "VALID"] if chart else []
    return console.render(
        "usage/overview.html",
        422 if errors else 200,
        chart=chart,
        refused=sorted(refused, key=lambda s: -s.total),
        top=top,
        values=values,
        errors=errors,
        ranges={name: label for name, (label, _) in RANGES.items()},
        granularities=GRANULARITIES,
    )


def usage_of(
    console: Console, *, key_id: str | None = None, app_id: str | None = None
) -> UsageChart | None:
    """The chart of a key or an app over the last day, by hour, for the key's and the app's
    pages; None when the user may not read analytics (the page then shows no chart)."""
    if not console.can("analytics:read"):
        return None
    return _chart(console, DEFAULT_RANGE, DEFAULT_GRANULARITY, key_id=key_id, app_id=app_id)


def _chart(
    console: Console,
    range_name: str,
    granularity: str,
    *,
    key_id: str | None = None,
    app_id: str | None = None,
) -> UsageChart:
    """The range's buckets up to and including the current one. Counting back from the
    current bucket's end (not from now, as the API's default does) keeps "last day by
    minute" within the API's longest minute series instead of one bucket over it."""
    if range_name not in RANGES:
        raise InvalidInput.field("range", f"range must be one of {', '.join(RANGES)}")
    step = _GRANULARITIES.get(granularity)
    if step is None:
        raise InvalidInput.field(
            "granularity", f"granularity must be one of {', '.join(GRANULARITIES)}"
        )
    current = bucket_start(console.kp.clock(), step)
    start = min(current, current + STEP[step] - RANGES[range_name][1])
    span, points = console.kp.analytics.usage(
        console.principal,
        granularity=step,
        start=start,
        end=None,
        key_id=key_id,
        app_id=app_id,
    )
    return UsageChart.of(span, points)
