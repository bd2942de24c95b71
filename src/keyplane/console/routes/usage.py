"""Usage: the organization's verifications and key-authenticated calls over the last day,
by outcome, and its busiest keys."""

from __future__ import annotations

from collections import Counter

from fastapi import APIRouter, Response

from keyplane.console.charts import OUTCOMES, StackedBars, stacked_bars
from keyplane.console.context import Console, SignedIn

router = APIRouter(prefix="/console/usage")


@router.get("")
def usage(console: SignedIn) -> Response:
    console.require("analytics:read")
    analytics = console.kp.analytics
    span, points = analytics.usage(console.principal, granularity="hour", start=None, end=None)
    _, top = analytics.top_keys(
        console.principal, granularity="hour", start=span.start, end=span.end, limit=10
    )
    totals: Counter[str] = Counter()
    for point in points:
        totals.update(point.counts)
    return console.render(
        "usage/overview.html",
        span=span,
        chart=stacked_bars(points),
        totals=sorted(totals.items(), key=lambda item: -item[1]),
        outcomes=OUTCOMES,
        top=top,
    )


def usage_of(
    console: Console, *, key_id: str | None = None, app_id: str | None = None
) -> StackedBars | None:
    """The chart of a key or an app over the last day, by hour, for the key's and the app's
    pages; None when the user may not read analytics (the page then shows no chart)."""
    if not console.can("analytics:read"):
        return None
    _, points = console.kp.analytics.usage(
        console.principal, granularity="hour", start=None, end=None, key_id=key_id, app_id=app_id
    )
    return stacked_bars(points)
