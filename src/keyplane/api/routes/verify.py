"""POST /v1/keys/verify: the hot path.

Measured on this kind of machine (DESIGN.md) a Pydantic-bodied FastAPI route serves well
under half of what a bare route does, so this one takes the raw request, parses the body
with orjson and validates it by hand. The OpenAPI document still describes it fully, from
the VerifyRequest/VerifyResponse models.
"""

from __future__ import annotations

import ipaddress
import time
import weakref
from typing import Any

import orjson
from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from keyplane.api.errors import (
    domain_problem,
    problem,
    ratelimit_headers,
    unavailable_problem,
)
from keyplane.api.routes._docs import problems
from keyplane.api.schemas.limits import states
from keyplane.api.schemas.verify import VerifyRequest, VerifyResponse
from keyplane.container import Keyplane
from keyplane.domain.errors import FieldError, InvalidInput, KeyplaneError, StorageUnavailable
from keyplane.domain.oauth import looks_like_token
from keyplane.domain.ratelimits import check_cost
from keyplane.domain.scopes import InvalidScope, parse_scope
from keyplane.domain.verification import CachedKey, Verdict
from keyplane.services.tokens import TokenService
from keyplane.services.verifying import NeedsLoad, Verifier

router = APIRouter(tags=["verification"])

_FIELDS = frozenset(("key", "scopes", "ip", "cost"))
_JSON = "application/json"


async def _entry(
    verifier: Verifier, presented: str | None, tokens: TokenService
) -> CachedKey | None:
    if not presented:
        return None
    entry = verifier.lookup(presented, load=False)
    if isinstance(entry, NeedsLoad):  # cold: read the store off the event loop
        return await run_in_threadpool(verifier.load, presented)
    if entry is None and looks_like_token(presented):
        # Not a key (lookup answers None at once for any other length): an access token
        # stands for its key narrowed to the token's scopes (services/tokens.py).
        found = tokens.resolve(presented, load=False)
        if isinstance(found, NeedsLoad):
            return await run_in_threadpool(tokens.load, presented)
        return found
    return entry


def _bearer(header: str | None) -> str | None:
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None


def _parse(body: bytes) -> tuple[str, list[str], str | None, int]:
    """The key, scopes, client address and cost asked about, or InvalidInput naming each
    bad field."""
    data: Any = orjson.loads(body)
    if not isinstance(data, dict):
        raise InvalidInput.field("body", "must be a JSON object")
    errors = [
        FieldError(name, "is not a field of this request") for name in data if name not in _FIELDS
    ]
    key = data.get("key")
    if key is None:
        errors.append(FieldError("key", "is required"))
    elif not isinstance(key, str):
        errors.append(FieldError("key", "must be a string"))
    scopes = data.get("scopes", [])
    if not isinstance(scopes, list):
        errors.append(FieldError("scopes", "must be a list of scopes"))
        scopes = []
    for index, scope in enumerate(scopes):
        if not isinstance(scope, str):
            errors.append(FieldError(f"scopes[{index}]", "must be a string"))
            continue
        try:
            parse_scope(scope)
        except InvalidScope as exc:
            errors.append(FieldError(f"scopes[{index}]", str(exc)))
    ip = data.get("ip")
    if ip is not None:
        # A string only: ip_address() also takes integers (and so True and False).
        try:
            valid_ip = isinstance(ip, str) and bool(ipaddress.ip_address(ip))
        except ValueError:
            valid_ip = False
        if not valid_ip:
            errors.append(FieldError("ip", "must be an IPv4 or IPv6 address"))
    cost = _cost(data.get("cost", 1), errors)
    if errors or not isinstance(key, str):
        raise InvalidInput(*errors)
    return key, [str(s) for s in scopes], ip, cost


def _cost(cost: Any, errors: list[FieldError]) -> int:
    if type(cost) is int and cost == 1:  # the usual case, without a call (not True, not 1.0)
        return 1
    try:
        return check_cost(cost)
    except InvalidInput as exc:
        errors.extend(exc.errors)
        return 0


def _payload(verdict: Verdict) -> dict[str, Any]:
    payload = _described(verdict)
    admission = verdict.admission
    if admission is not None:
        payload["ratelimits"] = states(admission)
        if admission.quota_remaining is not None:
            payload["quota"] = {"remaining": admission.quota_remaining}
    return payload


def _described(verdict: Verdict) -> dict[str, Any]:
    entry = verdict.key
    if entry is None:
        return {
            "valid": False,
            "code": verdict.code,
            "key_id": None,
            "app_id": None,
            "scopes": [],
            "missing_scopes": [],
            "profile": None,
            "metadata": None,
            "environment": None,
            "expires_at": None,
            "ratelimits": [],
            "quota": None,
        }
    profile = entry.profile
    return {
        "valid": verdict.valid,
        "code": verdict.code,
        "key_id": entry.key_id,
        "app_id": entry.app_id,
        "scopes": entry.scopes.sorted(),
        "missing_scopes": list(verdict.missing_scopes),
        "profile": {"id": profile.id, "name": profile.name, "settings": profile.settings}
        if profile
        else None,
        "metadata": entry.metadata,
        "environment": entry.environment,
        "expires_at": entry.expires_at,
        "ratelimits": [],
        "quota": None,
    }


@router.post(
    "/v1/keys/verify",
    summary="Verify a key",
    response_class=Response,
    responses={
        200: {"model": VerifyResponse, "description": "The verdict (also for invalid keys)."},
        **problems(422, 429),
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {_JSON: {"schema": VerifyRequest.model_json_schema()}},
        }
    },
)
async def verify(request: Request) -> Response:
    """May the presented key do all of ``scopes``? Needs a key holding ``keys:verify``.

    Always 200 for a verdict, valid or not: `code` says which. The checks run in this
    order and the first that fails answers: format and existence (`NOT_FOUND`, also for
    keys of another organization), status (`EXPIRED`, then `DISABLED`), IP allowlist
    (`IP_FORBIDDEN`: give the client's address as `ip`), scopes (`INSUFFICIENT_SCOPE`),
    rate limits (`RATE_LIMITED`), quota (`USAGE_EXCEEDED`). Rate limits and quota are
    checked together and spent (by `cost`, default 1; 0 checks without spending) only
    when all admit: a refused verification consumes neither. A key with limits answers
    `ratelimits` (each limit's `remaining`, `reset_seconds`, `reset_at`) and `quota`
    (`remaining`) for a gateway to pass on. The answer also carries the key's effective
    scopes and profile so the calling service can configure itself per key.

    `key` may also be an access token from `POST /oauth/token`: the verdict is its key's,
    with the key's scopes narrowed to the token's (an expired, forged or foreign token is
    `NOT_FOUND`). The calling credential may be a token too.
    """
    kp: Keyplane = request.app.state.keyplane
    return await answer(
        kp.verifier,
        kp.tokens,
        request.app.state.valid_bodies,
        request.headers.get("authorization"),
        request.headers.get("content-type", ""),
        await request.body(),
        request.client.host if request.client else None,
    )


async def answer(
    verifier: Verifier,
    tokens: TokenService,
    bodies: ValidBodies,
    authorization: str | None,
    content_type: str,
    body: bytes,
    client: str | None = None,
) -> Response:
    """The whole verification exchange, shared by the fast ASGI path and the route above.

    ``client``: the caller's address, for the calling key's own allowlist; the calling key's
    own limits are enforced like on any API call (429, RateLimit headers)."""
    started = time.perf_counter()
    if "json" not in content_type.lower():
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the request body as JSON with 'Content-Type: application/json'.",
        )
    try:
        caller = await _entry(verifier, _bearer(authorization), tokens)
        if caller is not None and caller.limited and verifier.limits_block:
            principal = await verifier.principal_of_async(caller, client)
        else:
            principal = verifier.principal_of(caller, client)
        principal.require("keys:verify")
        key, scopes, ip, cost = _parse(body)
    except KeyplaneError as exc:
        return domain_problem(exc)
    except orjson.JSONDecodeError:
        return problem(
            400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
        )
    except StorageUnavailable as exc:  # a cold load: this path answers without FastAPI
        return unavailable_problem(exc)
    try:
        entry = await _entry(verifier, key, tokens)
        # A limiter in Redis is a network round trip: awaited on the event loop (the
        # pipelined connection of redisclient.py), and only for a limited key, so the usual
        # verification stays one inline call. Measured with bench/verify.py --limits on
        # this 2-core machine (shared with other work), Redis limit / in-process limit:
        # the sync judge in the threadpool 31% (thread handoffs, GIL convoys behind the
        # busy loop); redis.asyncio 43-48% (~95 µs of CPU per call); the pipelined
        # connection 74% (server CPU per verification 99 µs against 82 µs in process).
        if entry is not None and entry.limited and verifier.limits_block:
            verdict = await verifier.judge_async(principal.org_id, entry, scopes, ip=ip, cost=cost)
        else:
            verdict = verifier.judge(principal.org_id, entry, scopes, ip=ip, cost=cost)
    except StorageUnavailable as exc:  # also LimitsUnavailable: Redis down, policy closed
        return unavailable_problem(exc)
    verifier.metrics.verified(verdict.code, time.perf_counter() - started)
    headers = ratelimit_headers(principal.limits) if principal.limits is not None else None
    return Response(bodies.body(verdict), media_type=_JSON, headers=headers)


_EMPTY_LIMITS = b'"ratelimits":[],"quota":null}'


class ValidBodies:
    """The bytes of VALID answers, kept per app beside the cached key record they describe.

    A VALID answer depends only on the key's cached record, and a change to the key replaces
    the record; the bytes are held weakly by the record, so they go when the key cache drops
    it (an invalidation, an eviction) and never outlive a revoked key.
    """

    def __init__(self) -> None:
        self._bodies: weakref.WeakKeyDictionary[CachedKey, bytes] = weakref.WeakKeyDictionary()

    def body(self, verdict: Verdict) -> bytes:
        entry = verdict.key
        if verdict.code != "VALID" or entry is None:
            return orjson.dumps(_payload(verdict))
        kept = self._bodies.get(entry)
        if kept is None:
            kept = self._bodies[entry] = orjson.dumps(_described(verdict))
        admission = verdict.admission
        if admission is None:
            return kept
        # A limited key's numbers change with every call: the kept bytes end with empty
        # ones (_described puts them last), replaced here, the rest is not serialised again.
        quota = admission.quota_remaining
        return b"".join(
            (
                kept[: -len(_EMPTY_LIMITS)],
                b'"ratelimits":',
                orjson.dumps(states(admission)),
                b',"quota":',
                b"null" if quota is None else b'{"remaining":%d}' % quota,
                b"}",
            )
        )

    def __len__(self) -> int:
        return len(self._bodies)


class VerifyFastPath:
    """Serves POST /v1/keys/verify straight from the ASGI scope, ahead of FastAPI's router,
    exception and exit-stack layers (bench/verify.py: about a quarter of the route's cost).
    Everything else passes through. It sits inside RequestGuard, so URL and size rules
    still apply."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] != "/v1/keys/verify"
            or scope["method"] != "POST"
        ):
            await self.app(scope, receive, send)
            return
        authorization = None
        content_type = ""
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
            elif name == b"content-type":
                content_type = value.decode("latin-1")
        chunks = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        state = scope["app"].state
        kp: Keyplane = state.keyplane
        client = scope.get("client")
        response = await answer(
            kp.verifier,
            kp.tokens,
            state.valid_bodies,
            authorization,
            content_type,
            b"".join(chunks),
            client[0] if client else None,
        )
        await response(scope, receive, send)
