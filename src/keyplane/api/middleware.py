"""Pure-ASGI guards in front of every route (no BaseHTTPMiddleware: it costs the hot path)."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import unquote

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from keyplane.api.deps import LIMITS_SCOPE_KEY
from keyplane.api.errors import problem, ratelimit_headers
from keyplane.domain.limits import REQUEST_BODY_MAX_BYTES
from keyplane.domain.oauth import contains_token
from keyplane.domain.tokens import looks_like_key
from keyplane.settings import IPNetwork

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
        if looks_like_key(text) or contains_token(text):
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


class TrustedProxies:
    """Sets ``scope["client"]`` from ``X-Forwarded-For``, only when the socket peer is a
    trusted proxy (``KEYPLANE_TRUSTED_PROXIES``); throttling and audit then see the client.

    The header is read from the right: each proxy appends the address it received from, so
    the entries a trusted proxy added are believable and anything further left may be made
    up by the client. The first address that is not a trusted proxy is the client. A
    trusted peer's ``X-Forwarded-Proto`` sets the scheme (HSTS follows it). With no
    trusted proxies this does nothing, and uvicorn's own header handling stays off
    (``proxy_headers=False``): otherwise it believes 127.0.0.1 by default.
    """

    def __init__(self, app: ASGIApp, trusted: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def _is_trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def client_of(self, peer: str, forwarded: Sequence[str]) -> str:
        """The client address for a request from ``peer`` carrying these header values."""
        if not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for value in forwarded for hop in value.split(",")]
        client = peer
        for hop in reversed(hops):
            try:
                ipaddress.ip_address(hop)
            except ValueError:
                # Garbage (or an obfuscated "unknown" hop): nothing left of it can be
                # believed, and the last address we could believe is the answer.
                return client
            client = hop
            if not self._is_trusted(hop):
                return hop
        return client

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            peer = scope["client"][0]
            if self._is_trusted(peer):
                scope = self._forwarded(scope, peer)
        await self.app(scope, receive, send)

    def _forwarded(self, scope: Scope, peer: str) -> Scope:
        forwarded: list[str] = []
        proto = None
        for name, value in scope["headers"]:
            if name == b"x-forwarded-for":
                forwarded.append(value.decode("latin-1"))
            elif name == b"x-forwarded-proto":
                proto = value.decode("latin-1").rsplit(",", 1)[-1].strip().lower()
        scope = dict(scope)
        if forwarded:
            scope["client"] = (self.client_of(peer, forwarded), 0)
        # The scheme the client used, as the nearest proxy saw it (for HSTS, Secure).
        if proto in ("http", "https"):
            scope["scheme"] = (
                proto if scope["type"] == "http" else {"http": "ws", "https": "wss"}[proto]
            )
        return scope


class RateLimitHeaders:
    """Adds RateLimit-Policy and RateLimit to every response of a call authenticated by a
    key with rate limits (api/deps.py leaves its numbers in the scope). A refused call's
    429 carries them from its problem document already."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                admission = scope.get(LIMITS_SCOPE_KEY)
                if admission is not None:
                    headers = list(message.get("headers", ()))
                    for name, value in ratelimit_headers(admission).items():
                        headers.append((name.lower().encode(), value.encode("latin-1")))
                    message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
