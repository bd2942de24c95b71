"""Pure-ASGI guards in front of every route (no BaseHTTPMiddleware: it costs the hot path)."""

from __future__ import annotations

from urllib.parse import unquote

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.errors import problem
from keyplane.domain.limits import REQUEST_BODY_MAX_BYTES
from keyplane.domain.tokens import looks_like_key

_BODY_METHODS = frozenset(("POST", "PUT", "PATCH"))


class RequestGuard:
    """Refuses, before any route or log sees them: a key in the URL (400), a NUL character
    in the path or query (400, no database takes it), and bodies over the limit (413)."""

    def __init__(self, app: ASGIApp, max_body: int = REQUEST_BODY_MAX_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refusal = self._refuse_url(scope)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        length = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
                break
        if length is not None:
            if not length.isdigit() or int(length) > self.max_body:
                await _too_large(self.max_body)(scope, receive, send)
                return
        elif scope["method"] in _BODY_METHODS:
            # No length announced (chunked): read up to the limit here, then replay it.
            body = await _read_limited(receive, self.max_body)
            if body is None:
                await _too_large(self.max_body)(scope, receive, send)
                return
            receive = _replay(body)
        await self.app(scope, receive, send)

    @staticmethod
    def _refuse_url(scope: Scope) -> Response | None:
        raw = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        text = raw.decode("latin-1")
        for _ in range(3):  # a key encoded twice is still a key
            decoded = unquote(text)
            if decoded == text:
                break
            text = decoded
        if looks_like_key(text):
            return problem(
                400,
                "key-in-url",
                "API key in URL",
                "API keys are accepted only in the Authorization header or a request body, "
                "never in a URL, where proxies and logs keep them. Treat this key as exposed "
                "and rotate it.",
            )
        if "\x00" in text:
            return problem(400, "bad-request", "Bad request", "The URL contains a NUL character.")
        return None


def _too_large(limit: int) -> Response:
    return problem(
        413,
        "payload-too-large",
        "Request body too large",
        f"Request bodies are limited to {limit} bytes.",
    )


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive
