"""KeyplaneMiddleware: the guard as pure ASGI middleware around a Starlette app, against a
real keyplane server over loopback; WebSocket and lifespan traffic passes through."""

from __future__ import annotations

from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from keyplane_client import KeyplaneGuard, KeyplaneMiddleware

from conftest import Org
from support.aio import run
from support.guarded import bearer, subscribed, verifier

PROBLEM = "application/problem+json"


async def _whoami(request: Request) -> JSONResponse:
    key = request.state.keyplane_key
    return JSONResponse({"key_id": key.id, "scopes": list(key.scopes)})


async def _health(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


def _app(guard: KeyplaneGuard) -> KeyplaneMiddleware:
    inner = Starlette(routes=[Route("/whoami", _whoami), Route("/healthz", _health)])
    return KeyplaneMiddleware(inner, guard=guard, scopes=["models:read"], public=["/healthz"])


def _keys(org: Org, **target: Any) -> tuple[str, str, str]:
    response = org.api.post("/v1/resources", json={"name": "models"})
    assert response.status_code in (201, 409), response.text
    checker = org.api.create_key(name="gateway", scopes=["keys:verify"])
    made = org.api.create_key(name="caller", **{"scopes": ["models:read"], **target})
    return str(checker["key"]), str(made["id"]), str(made["key"])


def _client(app: KeyplaneMiddleware) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://app")


def test_a_valid_key_reaches_the_app_with_the_verified_key_in_its_state(sdk_org: Org) -> None:
    checker, key_id, key = _keys(sdk_org)

    async def scenario() -> list[httpx.Response]:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        async with kp, guard.running(), _client(_app(guard)) as app:
            await subscribed(guard)
            return [await app.get("/whoami", headers=bearer(key)) for _ in range(2)]

    answers = run(scenario)
    assert [a.json() for a in answers] == [{"key_id": key_id, "scopes": ["models:read"]}] * 2


def test_refusals_are_answered_by_the_middleware_and_public_paths_pass(sdk_org: Org) -> None:
    checker, _, key = _keys(sdk_org, scopes=["apps:read"])

    async def scenario() -> tuple[httpx.Response, httpx.Response, httpx.Response]:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp, subscribe=False)
        async with kp, _client(_app(guard)) as app:
            return (
                await app.get("/whoami", headers=bearer(key)),
                await app.get("/whoami"),
                await app.get("/healthz"),
            )

    forbidden, anonymous, health = run(scenario)
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"] == PROBLEM
    assert forbidden.json()["missing_scopes"] == ["models:read"]
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    assert health.status_code == 200


def test_a_limited_keys_ratelimit_headers_are_added_to_the_apps_response(sdk_org: Org) -> None:
    checker, _, key = _keys(
        sdk_org, ratelimits=[{"name": "minute", "limit": 10, "period_seconds": 60}]
    )

    async def scenario() -> httpx.Response:
        kp, _ = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp, subscribe=False)
        async with kp, _client(_app(guard)) as app:
            return await app.get("/whoami", headers=bearer(key))

    answer = run(scenario)
    assert answer.status_code == 200
    assert answer.headers["ratelimit-policy"] == '"minute";q=10'
    assert answer.headers["ratelimit"].startswith('"minute";r=9;t=')


def test_websocket_and_lifespan_scopes_pass_through_and_the_lifespan_runs_the_stream(
    sdk_org: Org,
) -> None:
    checker, _, _ = _keys(sdk_org)
    seen: list[str] = []

    async def inner(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope["type"])
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        else:
            await send({"type": "websocket.close", "code": 1000})

    async def scenario() -> tuple[bool, bool, list[dict[str, Any]]]:
        kp, counted = verifier(sdk_org.server.base_url, checker)
        guard = KeyplaneGuard(kp)
        app = KeyplaneMiddleware(inner, guard=guard, scopes=["models:read"])
        sent: list[dict[str, Any]] = []

        async def collect(message: dict[str, Any]) -> None:
            sent.append(message)

        async def nothing() -> dict[str, Any]:
            raise AssertionError("the inner app reads nothing here")

        async with kp:
            lifespan = {"type": "lifespan", "asgi": {"version": "3.0"}}
            # The lifespan: started by the startup message, stopped by the shutdown one.
            queue = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]

            async def lifespan_receive() -> dict[str, Any]:
                message = queue.pop(0)
                if message["type"] == "lifespan.shutdown":
                    await subscribed(guard)  # running since startup
                return message

            await app(lifespan, lifespan_receive, collect)
            assert guard.events is not None
            stopped = not guard.events.running
            websocket = {"type": "websocket", "path": "/ws", "headers": []}
            await app(websocket, nothing, collect)
            return stopped, counted.verifications == 0, sent

    stopped, no_verification, sent = run(scenario)
    assert stopped
    assert no_verification  # a websocket is not guarded (nor refused) by this middleware
    assert seen == ["lifespan", "websocket"]
    assert [m["type"] for m in sent] == [
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
        "websocket.close",
    ]
