"""Pure-ASGI guards in front of every route (no BaseHTTPMiddleware: it costs the hot path)."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.errors import problem
from keyplane.domain.limits import REQUEST_BODY_MAX_BYTES
from keyplane.domain.tokens import looks_like_key


class RequestGuard:
    """Refuses a key in a URL (400, before anything can log it) and oversized bodies (413)."""

    def __init__(self, app: ASGIApp, max_body: int = REQUEST_BODY_MAX_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"")
        if query and looks_like_key(unquote(query.decode("latin-1"))):
            response = problem(
                400,
                "key-in-url",
                "API key in URL",
                "API keys are accepted only in the Authorization header or a request body, "
                "never in a URL, where proxies and logs keep them. Treat this key as exposed "
                "and rotate it.",
            )
            await response(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_body:
                    await _too_large(self.max_body)(scope, receive, send)
                    return
                break
        else:
            if scope["method"] in ("POST", "PUT", "PATCH"):
                receive = _limited(receive, self.max_body)
        await self.app(scope, receive, send)


def _too_large(limit: int) -> Response:
    return problem(
        413,
        "payload-too-large",
        "Request body too large",
        f"Request bodies are limited to {limit} bytes.",
    )


class BodyTooLarge(Exception):
    """A chunked body grew past the limit; api/__init__ answers it with 413."""


def _limited(receive: Receive, limit: int) -> Receive:
    seen = 0

    async def wrapped() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge
        return message

    return wrapped
