"""``kp.presets``: named permission sets to start a key or an app from (``/v1/presets``).

A preset is a template: a key or app created from one (``kp.keys.create(preset=…)``) keeps
its own copy of the scopes, so changing a preset reaches no existing key."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyplane_client._models import Preset
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/presets", json=body(**fields))


def _page(cursor: str | None, limit: int | None) -> Call:
    return Call("GET", "/v1/presets", params={"cursor": cursor, "limit": limit})


def _one(method: str, preset_id: str, **fields: Any) -> Call:
    url = path("/v1/presets/{}", preset_id)
    return Call(method, url, json=body(**fields) if fields else None)


class Presets:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        scopes: Sequence[str],
        description: str | NotGiven = NOT_GIVEN,
    ) -> Preset:
        call = _create(name=name, scopes=scopes, description=description)
        return self._client._request(Preset, call)

    def list(self, *, limit: int | None = None) -> Paginator[Preset]:
        return Paginator(lambda cursor: self._client._request(Page[Preset], _page(cursor, limit)))

    def get(self, preset_id: str) -> Preset:
        return self._client._request(Preset, _one("GET", preset_id))

    def update(
        self,
        preset_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Preset:
        """Reaches no existing key or app: they hold copies of the scopes."""
        call = _one("PATCH", preset_id, name=name, description=description, scopes=scopes)
        return self._client._request(Preset, call)

    def delete(self, preset_id: str) -> None:
        self._client._request_empty(_one("DELETE", preset_id))


class AsyncPresets:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        name: str,
        scopes: Sequence[str],
        description: str | NotGiven = NOT_GIVEN,
    ) -> Preset:
        call = _create(name=name, scopes=scopes, description=description)
        return await self._client._request(Preset, call)

    def list(self, *, limit: int | None = None) -> AsyncPaginator[Preset]:
        async def fetch(cursor: str | None) -> Page[Preset]:
            return await self._client._request(Page[Preset], _page(cursor, limit))

        return AsyncPaginator(fetch)

    async def get(self, preset_id: str) -> Preset:
        return await self._client._request(Preset, _one("GET", preset_id))

    async def update(
        self,
        preset_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Preset:
        call = _one("PATCH", preset_id, name=name, description=description, scopes=scopes)
        return await self._client._request(Preset, call)

    async def delete(self, preset_id: str) -> None:
        await self._client._request_empty(_one("DELETE", preset_id))
