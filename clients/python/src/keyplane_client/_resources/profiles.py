"""``kp.profiles``: named settings a key carries to the services that verify it
(``/v1/profiles``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keyplane_client._models import Profile
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/profiles", json=body(**fields))


def _page(cursor: str | None, limit: int | None) -> Call:
    return Call("GET", "/v1/profiles", params={"cursor": cursor, "limit": limit})


def _one(method: str, profile_id: str, **fields: Any) -> Call:
    url = path("/v1/profiles/{}", profile_id)
    return Call(method, url, json=body(**fields) if fields else None)


class Profiles:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        settings: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> Profile:
        call = _create(name=name, settings=settings, description=description)
        return self._client._request(Profile, call)

    def list(self, *, limit: int | None = None) -> Paginator[Profile]:
        return Paginator(lambda cursor: self._client._request(Page[Profile], _page(cursor, limit)))

    def get(self, profile_id: str) -> Profile:
        return self._client._request(Profile, _one("GET", profile_id))

    def update(
        self,
        profile_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        settings: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> Profile:
        """Keys carrying the profile answer verifications with the new settings at once."""
        call = _one("PATCH", profile_id, name=name, settings=settings, description=description)
        return self._client._request(Profile, call)

    def delete(self, profile_id: str) -> None:
        """Refused (409) while any key carries the profile."""
        self._client._request_empty(_one("DELETE", profile_id))


class AsyncProfiles:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        name: str,
        settings: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> Profile:
        call = _create(name=name, settings=settings, description=description)
        return await self._client._request(Profile, call)

    def list(self, *, limit: int | None = None) -> AsyncPaginator[Profile]:
        async def fetch(cursor: str | None) -> Page[Profile]:
            return await self._client._request(Page[Profile], _page(cursor, limit))

        return AsyncPaginator(fetch)

    async def get(self, profile_id: str) -> Profile:
        return await self._client._request(Profile, _one("GET", profile_id))

    async def update(
        self,
        profile_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        settings: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> Profile:
        call = _one("PATCH", profile_id, name=name, settings=settings, description=description)
        return await self._client._request(Profile, call)

    async def delete(self, profile_id: str) -> None:
        await self._client._request_empty(_one("DELETE", profile_id))
