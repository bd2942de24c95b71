"""KeyplaneMiddleware: the guard as pure ASGI middleware, for any ASGI app.

```python
app = KeyplaneMiddleware(app, guard=guard, scopes=["models:read"], public=["/healthz"])
```

Every HTTP request (but those to a ``public`` path) needs a key holding ``scopes``; the
verified key is at ``scope["state"]["keyplane_key"]`` (Starlette: ``request.state.
keyplane_key``), and a limited key's RateLimit headers are added to the response. Refusals
are answered here, as problem documents. WebSocket and lifespan traffic passes through
untouched; the lifespan also starts the guard's event stream and stops it on shutdown.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection, MutableMapping, Sequence
from typing import Any, Final

from keyplane_client._guard import KeyplaneGuard, bearer
from keyplane_client._problems import Problem
from keyplane_client._verified import ratelimit_headers

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATE_KEY: Final = "keyplane_key"


class KeyplaneMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        guard: KeyplaneGuard,
        scopes: Sequence[str] = (),
        public: Collection[str] = (),
    ) -> None:
        self.app = app
        self.guard = guard
        self.scopes = tuple(scopes)
        self.public = frozenset(public)
        self._scopes_key = " ".join(self.scopes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                receive = self._lifespan(receive)
            await self.app(scope, receive, send)
            return
        if scope["path"] in self.public:
            await self.app(scope, receive, send)
            return
        client = scope.get("client") if self.guard.forward_ip else None
        try:
            verified = await self.guard.check(
                bearer(scope["headers"]),
                self.scopes,
                client[0] if client else None,
                scopes_key=self._scopes_key,
            )
        except Problem as problem:
            await _answer(send, problem)
            return
        scope.setdefault("state", {})[STATE_KEY] = verified
        if not verified.ratelimits:
            await self.app(scope, receive, send)
            return
        extra = ratelimit_headers(verified.ratelimits)

        async def send_with_limits(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_limits)

    def _lifespan(self, receive: Receive) -> Receive:
        guard = self.guard

        async def lifespan_receive() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                guard.start()
            elif message["type"] == "lifespan.shutdown":
                await guard.aclose()
            return message

        return lifespan_receive


async def _answer(send: Send, problem: Problem) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": problem.status,
            "headers": problem.raw_headers(),
        }
    )
    await send({"type": "http.response.body", "body": problem.body()})
