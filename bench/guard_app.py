"""The application bench/guard.py measures: one FastAPI app, the same small answer on a
route guarded by KeyplaneGuard (``/guarded``) and on one that is not (``/plain``).

``uvicorn --factory guard_app:create``; keyplane's address and the guard's key come from
the environment (KEYPLANE_BENCH_URL, KEYPLANE_BENCH_VERIFIER_KEY). ``/stats`` says how
many verifications the guard sent and whether its cache serves, so the benchmark can show
that the guarded load was answered from the cache.

No ``from __future__ import annotations``: FastAPI reads the routes' annotations, which
name a dependency made inside ``create``.
"""

import os
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI

from keyplane_client import AsyncKeyplane, KeyplaneGuard, VerifiedKey

SCOPE = "api_keys:read"


class CountingTransport(httpx.AsyncHTTPTransport):
    def __init__(self) -> None:
        super().__init__()
        self.verifications = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/keys/verify":
            self.verifications += 1
        return await super().handle_async_request(request)


def create() -> FastAPI:
    transport = CountingTransport()
    client = AsyncKeyplane(
        os.environ["KEYPLANE_BENCH_URL"],
        os.environ["KEYPLANE_BENCH_VERIFIER_KEY"],
        transport=transport,
    )
    guard = KeyplaneGuard(client)
    app = FastAPI()
    guard.install(app)
    require = Depends(guard.require(SCOPE))

    @app.get("/guarded")
    async def guarded(key: Annotated[VerifiedKey, require]) -> dict[str, Any]:
        return {"ok": True}

    @app.get("/plain")
    async def plain() -> dict[str, Any]:
        return {"ok": True}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "verifications": transport.verifications,
            "cached": len(guard.cache),
            "serving": guard.cache.serving,
        }

    return app
