"""Coroutines run to completion from a synchronous test.

On a thread of its own: while the session's Playwright browser is open, its sync API keeps
an event loop running on the main thread, where asyncio.run() refuses to start another.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run(make: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``make()``'s coroutine, run by asyncio.run on a new thread; its result or exception."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(make())).result()
