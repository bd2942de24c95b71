"""``kp.resources``: the organization's permission catalogue (``/v1/resources``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyplane_client._models import Resource
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path

_LIST = Call("GET", "/v1/resources")


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/resources", json=body(**fields))


def _one(method: str, name: str, **fields: Any) -> Call:
    return Call(method, path("/v1/resources/{}", name), json=body(**fields) if fields else None)


class Resources:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        title: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        actions: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Resource:
        """A resource of your own (``actions`` default to read, write and delete)."""
        call = _create(name=name, title=title, description=description, actions=actions)
        return self._client._request(Resource, call)

    def list(self) -> Paginator[Resource]:
        """The whole catalogue: built-in resources and the organization's own."""
        return Paginator(lambda _cursor: self._client._request(Page[Resource], _LIST))

    def get(self, name: str) -> Resource:
        return self._client._request(Resource, _one("GET", name))

    def update(
        self,
        name: str,
        *,
        title: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        actions: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Resource:
        """Built-ins cannot change; an action still granted cannot be removed (409)."""
        call = _one("PATCH", name, title=title, description=description, actions=actions)
        return self._client._request(Resource, call)

    def delete(self, name: str) -> None:
        """Refused (409) while any key or app grants the resource."""
        self._client._request_empty(_one("DELETE", name))


class AsyncResources:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        name: str,
        title: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        actions: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Resource:
        call = _create(name=name, title=title, description=description, actions=actions)
        return await self._client._request(Resource, call)

    def list(self) -> AsyncPaginator[Resource]:
        async def fetch(_cursor: str | None) -> Page[Resource]:
            return await self._client._request(Page[Resource], _LIST)

        return AsyncPaginator(fetch)

    async def get(self, name: str) -> Resource:
        return await self._client._request(Resource, _one("GET", name))

    async def update(
        self,
        name: str,
        *,
        title: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        actions: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Resource:
        call = _one("PATCH", name, title=title, description=description, actions=actions)
        return await self._client._request(Resource, call)

    async def delete(self, name: str) -> None:
        await self._client._request_empty(_one("DELETE", name))
