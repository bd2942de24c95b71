"""What the guard's tests share: a FastAPI app guarded by KeyplaneGuard, a transport that
counts the guard's calls to keyplane (real HTTP, only counted), and waits.

No ``from __future__ import annotations`` here: FastAPI reads the route's annotations,
which name a dependency made inside ``guarded_app``."""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI

from keyplane_client import AsyncKeyplane, KeyplaneGuard, VerifiedKey

WITHIN = 1.0  # seconds: the promise


class CountingTransport(httpx.AsyncHTTPTransport):
    """The real network, with a count of verifications sent (the cache's misses)."""

    def __init__(self) -> None:
        super().__init__()
        self.verifications = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/keys/verify":
            self.verifications += 1
        return await super().handle_async_request(request)


def verifier(base_url: str, key: str) -> tuple[AsyncKeyplane, CountingTransport]:
    transport = CountingTransport()
    return AsyncKeyplane(base_url, key, transport=transport, max_retries=0), transport


def guarded_app(guard: KeyplaneGuard) -> FastAPI:
    """``GET /models`` needs ``models:read``; ``GET /open`` needs nothing."""
    app = FastAPI()
    guard.install(app)

    @app.get("/models")
    async def models(
        key: Annotated[VerifiedKey, Depends(guard.require("models:read"))],
    ) -> dict[str, Any]:
        return {
            "key_id": key.id,
            "app_id": key.app_id,
            "scopes": list(key.scopes),
            "metadata": dict(key.metadata),
            "profile": key.profile.name if key.profile else None,
        }

    @app.get("/open")
    async def open_route() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def client_for(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def subscribed(guard: KeyplaneGuard) -> None:
    """The guard's event stream connected and ready (its cache serving)."""
    assert guard.events is not None
    guard.start()
    await asyncio.wait_for(guard.events.ready.wait(), 10)


async def until(probe: Callable[[], Awaitable[bool]], within: float) -> float:
    """Seconds until ``probe()`` held (polled every 10 ms); fails past ``within``."""
    started = time.monotonic()
    while not await probe():
        elapsed = time.monotonic() - started
        assert elapsed <= within, f"not within {within} s"
        await asyncio.sleep(0.01)
    return time.monotonic() - started
