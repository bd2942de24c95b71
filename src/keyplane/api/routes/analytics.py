"""/v1/analytics: usage over time and the busiest keys."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import AwareDatetime, BeforeValidator

from keyplane.api.deps import AnalyticsRead, Services
from keyplane.api.routes._docs import problems
from keyplane.api.schemas.analytics import TopKeys, UsageSeries
from keyplane.domain.usage import TOP_KEYS_MAX, Granularity

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

_ISO_8601 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _iso_8601(value: object) -> object:
    """Only the documented form: pydantic alone would also take a number of seconds."""
    if isinstance(value, str) and not _ISO_8601.match(value):
        raise ValueError("must be a date and time with a zone, e.g. 2026-11-30T12:00:00Z")
    return value


Moment = Annotated[AwareDatetime, BeforeValidator(_iso_8601)]

From = Annotated[
    Moment | None,
    Query(alias="from", description="Start (ISO 8601 with a zone); default: a span before `to`."),
]
To = Annotated[Moment | None, Query(alias="to", description="End, exclusive; default: now.")]
Step = Annotated[
    Granularity,
    Query(
        description="Bucket size. A series spans at most 1 day by minute, 62 by hour, "
        "731 by day; minute rows are kept 7 days, hourly 90 days, daily 2 years."
    ),
]


@router.get("/usage", responses=problems(404, 422), summary="Usage over time")
def usage(
    principal: AnalyticsRead,
    kp: Services,
    key_id: str | None = None,
    app_id: str | None = None,
    start: From = None,
    end: To = None,
    granularity: Step = "hour",
) -> UsageSeries:
    """Verifications and key-authenticated API calls per bucket and outcome, for one key,
    one app's keys, or (with neither) the whole organization, including NOT_FOUND answers
    about keys that do not exist."""
    span, points = kp.analytics.usage(
        principal, granularity=granularity, start=start, end=end, key_id=key_id, app_id=app_id
    )
    return UsageSeries.of(span, points, key_id, app_id)


@router.get("/top-keys", responses=problems(422), summary="Busiest keys")
def top_keys(
    principal: AnalyticsRead,
    kp: Services,
    start: From = None,
    end: To = None,
    granularity: Step = "day",
    limit: Annotated[int, Query(ge=1, le=TOP_KEYS_MAX)] = 10,
) -> TopKeys:
    """The keys with the most answers in buckets starting within the range, busiest first."""
    span, keys = kp.analytics.top_keys(
        principal, granularity=granularity, start=start, end=end, limit=limit
    )
    return TopKeys.of(span, keys)
