"""``kp.usage``: answers over time and the busiest keys (``/v1/analytics``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from keyplane_client._models import TopKeys, UsageSeries
from keyplane_client._types import AsyncAPI, Call, SyncAPI, moment

Granularity = Literal["minute", "hour", "day"]


def _series(
    key_id: str | None,
    app_id: str | None,
    start: datetime | str | None,
    end: datetime | str | None,
    granularity: Granularity | None,
) -> Call:
    params = {
        "key_id": key_id,
        "app_id": app_id,
        "from": moment(start),
        "to": moment(end),
        "granularity": granularity,
    }
    return Call("GET", "/v1/analytics/usage", params=params)


def _top(
    start: datetime | str | None,
    end: datetime | str | None,
    granularity: Granularity | None,
    limit: int | None,
) -> Call:
    params = {"from": moment(start), "to": moment(end), "granularity": granularity, "limit": limit}
    return Call("GET", "/v1/analytics/top-keys", params=params)


class Usage:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def series(
        self,
        *,
        key_id: str | None = None,
        app_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: Granularity | None = None,
    ) -> UsageSeries:
        """Answers per bucket and outcome (``VALID``, each refusal code) for one key, one
        app's keys, or the whole organization; by hour unless a ``granularity`` is given."""
        return self._client._request(UsageSeries, _series(key_id, app_id, start, end, granularity))

    def top_keys(
        self,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: Granularity | None = None,
        limit: int | None = None,
    ) -> TopKeys:
        """The keys with the most answers in the range, busiest first."""
        return self._client._request(TopKeys, _top(start, end, granularity, limit))


class AsyncUsage:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def series(
        self,
        *,
        key_id: str | None = None,
        app_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: Granularity | None = None,
    ) -> UsageSeries:
        call = _series(key_id, app_id, start, end, granularity)
        return await self._client._request(UsageSeries, call)

    async def top_keys(
        self,
        *,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        granularity: Granularity | None = None,
        limit: int | None = None,
    ) -> TopKeys:
        return await self._client._request(TopKeys, _top(start, end, granularity, limit))
