"""``kp.users``: the people who sign in to the console, and their roles (``/v1/users``)."""

from __future__ import annotations

from typing import Any, Literal

from keyplane_client._models import CreatedUser, User
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path

Role = Literal["owner", "admin", "developer", "viewer"]


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/users", json=body(**fields))


def _page(cursor: str | None, limit: int | None) -> Call:
    return Call("GET", "/v1/users", params={"cursor": cursor, "limit": limit})


def _one(method: str, user_id: str, **fields: Any) -> Call:
    return Call(method, path("/v1/users/{}", user_id), json=body(**fields) if fields else None)


class Users:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        email: str,
        name: str | NotGiven = NOT_GIVEN,
        role: Role | NotGiven = NOT_GIVEN,
        password: str | NotGiven = NOT_GIVEN,
    ) -> CreatedUser:
        """Invites a user (``viewer`` unless a ``role`` is given). Without a password the
        answer's ``set_password_url`` is a one-time link for them: a secret, shown once."""
        call = _create(email=email, name=name, role=role, password=password)
        return self._client._request(CreatedUser, call)

    def list(self, *, limit: int | None = None) -> Paginator[User]:
        return Paginator(lambda cursor: self._client._request(Page[User], _page(cursor, limit)))

    def get(self, user_id: str) -> User:
        return self._client._request(User, _one("GET", user_id))

    def update(
        self,
        user_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        role: Role | NotGiven = NOT_GIVEN,
    ) -> User:
        """The last owner cannot be demoted (409)."""
        return self._client._request(User, _one("PATCH", user_id, name=name, role=role))

    def delete(self, user_id: str) -> None:
        """Removes the user; their console sessions end at once."""
        self._client._request_empty(_one("DELETE", user_id))


class AsyncUsers:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        email: str,
        name: str | NotGiven = NOT_GIVEN,
        role: Role | NotGiven = NOT_GIVEN,
        password: str | NotGiven = NOT_GIVEN,
    ) -> CreatedUser:
        call = _create(email=email, name=name, role=role, password=password)
        return await self._client._request(CreatedUser, call)

    def list(self, *, limit: int | None = None) -> AsyncPaginator[User]:
        async def fetch(cursor: str | None) -> Page[User]:
            return await self._client._request(Page[User], _page(cursor, limit))

        return AsyncPaginator(fetch)

    async def get(self, user_id: str) -> User:
        return await self._client._request(User, _one("GET", user_id))

    async def update(
        self,
        user_id: str,
        *,
        name: str | NotGiven = NOT_GIVEN,
        role: Role | NotGiven = NOT_GIVEN,
    ) -> User:
        return await self._client._request(User, _one("PATCH", user_id, name=name, role=role))

    async def delete(self, user_id: str) -> None:
        await self._client._request_empty(_one("DELETE", user_id))
