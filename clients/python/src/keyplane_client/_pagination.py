"""Lists that follow ``next_cursor`` to the last page, one request per page, lazily."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list: its items and the cursor of the next page (None on the last)."""

    model_config = ConfigDict(extra="allow")

    data: list[T]
    next_cursor: str | None = None


class Paginator(Generic[T]):
    """Iterates over every item of every page; ``.pages()`` gives the pages themselves.

    Nothing is requested before the iteration starts, and each page only when the previous
    one is used up, so ``next(iter(kp.keys.list()))`` costs one request."""

    def __init__(self, fetch: Callable[[str | None], Page[T]]) -> None:
        self._fetch = fetch

    def pages(self) -> Iterator[Page[T]]:
        cursor: str | None = None
        while True:
            page = self._fetch(cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def __iter__(self) -> Iterator[T]:
        for page in self.pages():
            yield from page.data


class AsyncPaginator(Generic[T]):
    """``async for`` over every item of every page; ``.pages()`` for the pages."""

    def __init__(self, fetch: Callable[[str | None], Awaitable[Page[T]]]) -> None:
        self._fetch = fetch

    async def pages(self) -> AsyncIterator[Page[T]]:
        cursor: str | None = None
        while True:
            page = await self._fetch(cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self.pages():
            for item in page.data:
                yield item
