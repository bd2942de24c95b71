"""KeyplaneGuard: keyplane in front of a FastAPI or Starlette route, with a local cache.

```python
kp = AsyncKeyplane(KEYPLANE_URL, VERIFIER_KEY)  # a key holding keys:verify
guard = KeyplaneGuard(kp)
app = FastAPI()
guard.install(app)  # problem documents, and the event stream on the app's lifespan

@app.get("/models")
async def models(key: Annotated[VerifiedKey, Depends(guard.require("models:read"))]): ...
```

Each request's ``Authorization: Bearer`` key is verified by keyplane for the route's
scopes (with the client's address, for IP allowlists), or answered from the cache.

What the cache keeps, and why (the rate-limit question): only verdicts that are valid and
carry neither rate limits nor a quota. A key with limits is verified by keyplane on every
request, so every request is counted and its 429 comes from keyplane's own counters; a
cached verdict would let such a key past its limits for as long as the entry lived. The
price is a round trip per request for limited keys; unlimited keys, the common case for
internal services, cost microseconds. A key whose limits are added later is named on the
event stream (its or its app's change) and leaves the cache then.

Refusals are not cached: a refused key costs keyplane little (garbage is answered from
the key's checksum, here and there, before any lookup), while a cache of refusals keyed by
whatever callers send could be filled by anyone to push out the entries that matter, and
would keep refusing a key re-enabled a moment ago.

Also given up: keyplane counts usage and last-used times from verifications, so a key
answered from the cache shows fewer calls in keyplane's analytics than it made.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any, Final

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from keyplane_client._cache import CacheKey, VerdictCache
from keyplane_client._errors import KeyplaneError
from keyplane_client._events import READ_TIMEOUT, EventSubscription
from keyplane_client._problems import Problem, refusal, unauthenticated, unavailable
from keyplane_client._types import NOT_GIVEN
from keyplane_client._verified import VerifiedKey, ratelimit_headers

if TYPE_CHECKING:
    from starlette.applications import Starlette

    from keyplane_client._client import AsyncKeyplane

log = logging.getLogger("keyplane_client.guard")

DEFAULT_CACHE_SIZE: Final = 10_000
DEFAULT_CACHE_TTL: Final = 30.0

_BASE62: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_KEY_LENGTH: Final = 46  # kp_ + live/test + _ + 32 random + 6 checksum


def well_formed(token: str) -> bool:
    """Whether a ``kp_`` token has keyplane's shape and checksum (CRC32 of what precedes
    its last six base62 characters), as keyplane checks before any lookup."""
    if len(token) != _KEY_LENGTH or token[3:8] not in ("live_", "test_"):
        return False
    tail = token[8:]
    if not (tail.isascii() and tail.isalnum()):
        return False
    number = zlib.crc32(token[:-6].encode("ascii"))
    digits = []
    for _ in range(6):
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    return "".join(reversed(digits)) == token[-6:]


def token_expiry(token: str) -> float | None:
    """The ``exp`` of a JWT (an OAuth access token keyplane issued), read without checking
    its signature: keyplane verifies the token, this only keeps a cached verdict from
    outliving it. None for a key, or a token without a readable ``exp``."""
    if token.count(".") != 2:
        return None
    payload = token.split(".")[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, RecursionError):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def bearer(headers: Sequence[tuple[bytes, bytes]]) -> str | None:
    """The token of an ``Authorization: Bearer`` header; "" for another scheme or an empty
    token; None without the header."""
    for name, value in headers:
        if name == b"authorization":
            if value[:7] == b"Bearer ":  # as nearly every client sends it
                return value[7:].strip().decode("latin-1")
            scheme, _, token = value.strip().partition(b" ")
            if scheme.lower() != b"bearer":
                return ""
            return token.strip().decode("latin-1")
    return None


class KeyplaneRefused(HTTPException):
    """Raised by :meth:`KeyplaneGuard.require`'s dependency to refuse a request. With
    :meth:`KeyplaneGuard.install` the answer is the full problem document; without it,
    your app's HTTPException handler renders it (FastAPI's: ``{"detail": …}``, with the
    status and headers all the same)."""

    def __init__(self, problem: Problem) -> None:
        headers = {name.decode(): value.decode() for name, value in problem.headers}
        super().__init__(problem.status, problem.detail, headers)
        self.problem = problem


def problem_response(problem: Problem) -> Response:
    response = Response(problem.body(), status_code=problem.status)
    response.raw_headers = problem.raw_headers()
    return response


class KeyplaneGuard:
    """Verifies the keys of requests to your API with keyplane, caching what it may.

    ``client``: an :class:`AsyncKeyplane` acting as a key that holds ``keys:verify``.
    ``cache_size``: verdicts kept (0: no cache). ``cache_ttl``: seconds an entry may serve
    at most. ``subscribe``: follow keyplane's event stream so that an entry is dropped
    within a second of a change to its key, app, profile or organization; with
    ``subscribe=False`` nothing tells the guard of a change, and a disabled or deleted key
    is still let in from the cache for up to ``cache_ttl`` seconds. ``forward_ip``: send
    the client's address (``scope["client"]``, as your proxy middleware resolved it) so
    keyplane can apply IP allowlists.
    """

    def __init__(
        self,
        client: AsyncKeyplane,
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
        cache_ttl: float = DEFAULT_CACHE_TTL,
        subscribe: bool = True,
        forward_ip: bool = True,
        stream_read_timeout: float = READ_TIMEOUT,
    ) -> None:
        self.client = client
        self.cache = VerdictCache(cache_size, cache_ttl)
        self.forward_ip = forward_ip
        self.events: EventSubscription | None = None
        # Verifications in flight, by cache key, and the cache generation they began in.
        self._inflight: dict[CacheKey, tuple[asyncio.Future[VerifiedKey | None], int]] = {}
        if subscribe and cache_size > 0:
            self.events = EventSubscription(client, self.cache, read_timeout=stream_read_timeout)

    # --- the check ------------------------------------------------------------------------

    async def check(
        self,
        token: str | None,
        scopes: Sequence[str],
        ip: str | None = None,
        *,
        cost: int | None = None,
        scopes_key: str | None = None,
    ) -> VerifiedKey:
        """The verified key for ``token``, or a :class:`Problem` raised. ``scopes_key``
        (``" ".join(scopes)``) may be given precomputed, as :meth:`require` does."""
        if not token:
            raise unauthenticated(
                "An API key is required: Authorization: Bearer <key>."
                if token is None
                else "The Authorization header must be: Bearer <key>."
            )
        cache = self.cache
        key: CacheKey = (cache.fingerprint(token), scopes_key or " ".join(scopes), ip)
        hit = cache.get(key)
        if hit is not None:
            return hit
        return await self._verify(token, scopes, ip, cost, key)

    async def _verify(
        self,
        token: str,
        scopes: Sequence[str],
        ip: str | None,
        cost: int | None,
        key: CacheKey,
    ) -> VerifiedKey:
        if self.events is not None and not self.events.running:
            self.events.start()  # lazily, on the app's loop, if install() did not
        if token.startswith("kp_") and not well_formed(token):
            raise unauthenticated("The API key is missing, malformed or unknown.", "NOT_FOUND")
        # Concurrent misses for one key (a burst when an entry expires) share the first
        # one's verification when its answer is one the cache would have served anyway: a
        # valid verdict without limits, and nothing dropped since it was asked. Anything
        # else (a refusal, a limited key, whose every request keyplane must count) is
        # asked again by each request.
        pending = self._inflight.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending[0])
            if shared is not None and pending[1] == self.cache.generation:
                return shared
            return await self._ask(token, scopes, ip, cost, key, None)
        future: asyncio.Future[VerifiedKey | None] = asyncio.get_running_loop().create_future()
        self._inflight[key] = (future, self.cache.generation)
        try:
            return await self._ask(token, scopes, ip, cost, key, future)
        finally:
            if not future.done():
                future.set_result(None)
            del self._inflight[key]

    async def _ask(
        self,
        token: str,
        scopes: Sequence[str],
        ip: str | None,
        cost: int | None,
        key: CacheKey,
        future: asyncio.Future[VerifiedKey | None] | None,
    ) -> VerifiedKey:
        generation = self.cache.generation
        try:
            verdict = await self.client.keys.verify(
                token,
                scopes=scopes,
                ip=ip if ip is not None else NOT_GIVEN,
                cost=cost if cost is not None else NOT_GIVEN,
            )
        except KeyplaneError as exc:
            # Fail closed: no answer from keyplane is no key. The message names the error's
            # type only (the request holds the key; nothing of it is logged).
            log.warning("keyplane could not verify a key: %s", type(exc).__name__)
            raise unavailable("The API key could not be verified; retry shortly.") from None
        if not verdict.valid:
            raise refusal(verdict)
        verified = VerifiedKey.of(verdict)
        if not verified.limited:
            self.cache.put(key, verified, generation, not_after=token_expiry(token))
            if future is not None:
                future.set_result(verified)
        return verified

    # --- FastAPI --------------------------------------------------------------------------

    def require(
        self, *scopes: str, cost: int | None = None
    ) -> Callable[[Request, Response], Awaitable[VerifiedKey]]:
        """A FastAPI dependency: ``Depends(guard.require("models:read"))`` yields the
        :class:`VerifiedKey` holding every scope given, or refuses the request (401, 403,
        429, 503 when keyplane cannot be reached). A limited key's RateLimit headers are
        added to the route's response (when the route returns data, not a Response)."""
        wanted = tuple(scopes)
        scopes_key = " ".join(wanted) if cost is None else f"{' '.join(wanted)}#{cost}"
        forward_ip = self.forward_ip
        check = self.check

        async def verified_key(request: Request, response: Response) -> VerifiedKey:
            scope = request.scope
            client = scope.get("client") if forward_ip else None
            try:
                verified = await check(
                    bearer(scope["headers"]),
                    wanted,
                    client[0] if client else None,
                    cost=cost,
                    scopes_key=scopes_key,
                )
            except Problem as problem:
                raise KeyplaneRefused(problem) from None
            if verified.ratelimits:
                response.headers.raw.extend(ratelimit_headers(verified.ratelimits))
            return verified

        return verified_key

    def install(self, app: Starlette) -> None:
        """Refusals as problem documents, and the event stream started and stopped with
        ``app``'s lifespan. Call before the app starts."""
        app.add_exception_handler(KeyplaneRefused, _refused)
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(app: Any) -> AsyncIterator[Any]:
            async with inner(app) as state, self.running():
                yield state

        app.router.lifespan_context = lifespan

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        """Starts following the event stream (on the running event loop). Also done by the
        first request that misses the cache."""
        if self.events is not None:
            self.events.start()

    async def aclose(self) -> None:
        """Stops following the event stream. The client is yours to close."""
        if self.events is not None:
            await self.events.aclose()

    def running(self) -> AbstractAsyncContextManager[None]:
        """``async with guard.running():`` the event stream is followed inside."""
        return _Running(self)


class _Running:
    def __init__(self, guard: KeyplaneGuard) -> None:
        self._guard = guard

    async def __aenter__(self) -> None:
        self._guard.start()

    async def __aexit__(self, *exc: object) -> None:
        await self._guard.aclose()


async def _refused(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyplaneRefused)  # noqa: S101 (registered for it alone)
    return problem_response(exc.problem)
