"""``kp.apps``: groups of keys sharing one scope set (``/v1/apps``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyplane_client._models import App, RateLimitParam
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/apps", json=body(**fields))


def _page(cursor: str | None, limit: int | None) -> Call:
    return Call("GET", "/v1/apps", params={"cursor": cursor, "limit": limit})


def _one(method: str, app_id: str, **fields: Any) -> Call:
    return Call(method, path("/v1/apps/{}", app_id), json=body(**fields) if fields else None)


class Apps:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
    ) -> App:
        """An app; its ``scopes`` govern every key in it (none: full access)."""
        call = _create(name=name, scopes=scopes, description=description, ratelimits=ratelimits)
        return self._client._request(App, call)

    def list(self, *, limit: int | None = None) -> Paginator[App]:
        return Paginator(lambda cursor: self._client._request(Page[App], _page(cursor, limit)))

    def get(self, app_id: str) -> App:
        return self._client._request(App, _one("GET", app_id))

    def update(
        self,
        app_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
    ) -> App:
        """A scope change applies to every key of the app from its next verification."""
        call = _one(
            "PATCH",
            app_id,
            name=name,
            scopes=scopes,
            description=description,
            ratelimits=ratelimits,
        )
        return self._client._request(App, call)

    def delete(self, app_id: str) -> None:
        """Deletes the app and its keys."""
        self._client._request_empty(_one("DELETE", app_id))


class AsyncApps:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
    ) -> App:
        call = _create(name=name, scopes=scopes, description=description, ratelimits=ratelimits)
        return await self._client._request(App, call)

    def list(self, *, limit: int | None = None) -> AsyncPaginator[App]:
        async def fetch(cursor: str | None) -> Page[App]:
            return await self._client._request(Page[App], _page(cursor, limit))

        return AsyncPaginator(fetch)

    async def get(self, app_id: str) -> App:
        return await self._client._request(App, _one("GET", app_id))

    async def update(
        self,
        app_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
    ) -> App:
        call = _one(
            "PATCH",
            app_id,
            name=name,
            scopes=scopes,
            description=description,
            ratelimits=ratelimits,
        )
        return await self._client._request(App, call)

    async def delete(self, app_id: str) -> None:
        await self._client._request_empty(_one("DELETE", app_id))
