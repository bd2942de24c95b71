"""GET /v1/auth/nginx: nginx's ``auth_request`` subrequest, a hot path like verification.

nginx asks, for each client request, whether the key the client presented may make it.
The organization's route table (domain/routes.py) says which scopes the request needs;
the key is then judged exactly as ``POST /v1/keys/verify`` judges it (services/verifying.py:
status, IP allowlist, scopes, rate limits and quota, spent by 1), from the warm key cache
with no database work. The table travels with the key's cached record, compiled once per
organization, and goes with it when the organization changes (on every node).

Which organization: the one nginx names in ``X-Keyplane-Org``. Without it, any
organization's key would pass any gateway under its own organization's rules, so a tenant
could write itself a table that opens another tenant's API. A key of another organization
is unknown here (401), as in a verification.

The client's address (for a key's IP allowlist) is the request's, as TrustedProxies
resolved it: nginx sends ``X-Forwarded-For``, believed only from KEYPLANE_TRUSTED_PROXIES.

nginx's ``auth_request`` understands 2xx, 401 and 403 and turns anything else into a 500;
docs/nginx/keyplane-auth.conf turns this route's 429 back into a 429 with ``Retry-After``
for the client (README: "Putting keyplane in front of your API with nginx").
"""

from __future__ import annotations

import time
from typing import Any, Final

from fastapi import APIRouter, Request, Response

from keyplane.api.errors import domain_problem, problem, ratelimit_headers, unavailable_problem
from keyplane.api.routes._docs import problems
from keyplane.api.routes.verify import _bearer, _entry
from keyplane.container import Keyplane
from keyplane.domain.errors import (
    IpForbidden,
    LimitExceeded,
    MissingScope,
    StorageUnavailable,
    Unauthenticated,
)
from keyplane.domain.routes import normalised_path
from keyplane.domain.verification import Verdict

router = APIRouter(tags=["verification"])

_UNAUTHENTICATED: Final = {
    None: "The API key is missing, malformed or unknown.",
    "NOT_FOUND": "The API key is missing, malformed or unknown.",
    "EXPIRED": "The API key has expired.",
    "DISABLED": "The API key is disabled.",
}
_HEADER_DOCS: Final = {
    "X-Keyplane-Key-Id": "The key's id (`key_…`).",
    "X-Keyplane-App-Id": "The key's app id (`app_…`); absent for a key without an app.",
    "X-Keyplane-Profile-Id": "The key's profile id; absent for a key without a profile.",
    "X-Keyplane-Scopes": "The key's effective scopes, space-separated.",
    "RateLimit-Policy": "The key's rate limits (only for a key with limits).",
    "RateLimit": "What remains of each (only for a key with limits).",
}
_PARAMETERS: Final = [
    {
        "name": "X-Keyplane-Org",
        "in": "header",
        "required": True,
        "description": "The organization whose keys and route table this gateway uses.",
        "schema": {
            "type": "string",
            "minLength": 1,
            "examples": ["org_01jdq8v2m3k4n5p6r7s8t9v0wx"],
        },
    },
    {
        "name": "X-Original-Method",
        "in": "header",
        "required": True,
        "description": "The client request's method (nginx: `$request_method`).",
        "schema": {"type": "string", "minLength": 1, "examples": ["GET"]},
    },
    {
        "name": "X-Original-URI",
        "in": "header",
        "required": True,
        "description": "The client request's URI as sent (nginx: `$request_uri`); the query "
        "string is ignored.",
        "schema": {"type": "string", "pattern": "^/", "examples": ["/models/llama?stream=1"]},
    },
]


def _missing_headers(*names: str) -> Response:
    return problem(
        400,
        "bad-request",
        "Bad request",
        f"Send {', '.join(names)} (see docs/nginx/keyplane-auth.conf).",
    )


@router.get(
    "/v1/auth/nginx",
    summary="Authorize a request for nginx auth_request",
    status_code=204,
    response_class=Response,
    responses={
        204: {
            "description": "Allowed. The headers are for nginx to pass on (auth_request_set).",
            "headers": {
                name: {"description": doc, "schema": {"type": "string"}}
                for name, doc in _HEADER_DOCS.items()
            },
        },
        **problems(),
    },
    openapi_extra={"parameters": _PARAMETERS, "security": [{"ApiKey": []}]},
)
async def nginx_auth(request: Request) -> Response:
    """May the key in `Authorization: Bearer` make the request nginx describes in
    `X-Original-Method` and `X-Original-URI`? Public: the presented key is what is checked.

    The organization's `route_table` (`PATCH /v1/org`) maps the request to the scopes it
    needs; the first matching rule decides, and a request matching no rule is denied (403,
    deny by default), as is a path that servers could read differently (`..` or `.`
    segments, `//`, an encoded `/`, `\\` or `%`). The key is then judged as a
    verification would judge it, spending one use of its rate limits and quota.

    204 with `X-Keyplane-Key-Id`, `X-Keyplane-App-Id`, `X-Keyplane-Scopes` and the
    rate-limit headers; 401 for a missing, unknown (also of another organization), disabled
    or expired key (`WWW-Authenticate`); 403 for a missing scope, an address outside the
    key's allowlist, or no matching rule; 429 with `Retry-After` over a rate limit or out of
    quota; 400 when a key is presented but a required header is missing (a misconfigured
    gateway).
    """
    kp: Keyplane = request.app.state.keyplane
    headers = request.headers
    authorization = headers.get("authorization")
    if not _bearer(authorization):  # no key: refused before anything else is looked at
        return domain_problem(Unauthenticated(_UNAUTHENTICATED[None]))
    org_id = headers.get("x-keyplane-org")
    method = headers.get("x-original-method")
    uri = headers.get("x-original-uri")
    if not org_id or not method or not uri:
        return _missing_headers("X-Keyplane-Org", "X-Original-Method", "X-Original-URI")
    return await answer(
        kp,
        org_id,
        method,
        uri,
        authorization,
        request.client.host if request.client else None,
    )


async def answer(
    kp: Keyplane,
    org_id: str,
    method: str,
    uri: str,
    authorization: str | None,
    client: str | None,
) -> Response:
    started = time.perf_counter()
    verifier = kp.verifier
    try:
        entry = await _entry(verifier, _bearer(authorization), kp.tokens)
        if entry is None or entry.org_id != org_id:
            return domain_problem(Unauthenticated(_UNAUTHENTICATED[None]))
        path = normalised_path(uri)
        required = entry.routes.required(method, path) if path is not None else None
        if required is None:
            # Denied whatever the key; but a dead key hears that it is dead.
            standing = verifier.standing(entry)
            if standing != "VALID":
                return domain_problem(Unauthenticated(_UNAUTHENTICATED[standing]))
            return _no_route(method, uri if path is None else path, ambiguous=path is None)
        if entry.limited and verifier.limits_block:
            verdict = await verifier.judge_async(org_id, entry, required, ip=client)
        else:
            verdict = verifier.judge(org_id, entry, required, ip=client)
    except StorageUnavailable as exc:  # a cold load; or Redis down with the policy closed
        return unavailable_problem(exc)
    verifier.metrics.verified(verdict.code, time.perf_counter() - started)
    return _answered(verdict)


def _answered(verdict: Verdict) -> Response:
    entry = verdict.key
    code = verdict.code
    if code == "VALID" and entry is not None:
        headers: dict[str, Any] = {
            "X-Keyplane-Key-Id": entry.key_id,
            "X-Keyplane-Scopes": " ".join(entry.scopes.sorted()),
        }
        if entry.app_id:
            headers["X-Keyplane-App-Id"] = entry.app_id
        if entry.profile_id:
            headers["X-Keyplane-Profile-Id"] = entry.profile_id
        if verdict.admission is not None:
            headers.update(ratelimit_headers(verdict.admission))
        return Response(status_code=204, headers=headers)
    if code in _UNAUTHENTICATED:
        return domain_problem(Unauthenticated(_UNAUTHENTICATED[code]))
    if code == "IP_FORBIDDEN":
        return domain_problem(IpForbidden())
    if code == "INSUFFICIENT_SCOPE":
        return domain_problem(MissingScope(verdict.missing_scopes[0]))
    assert verdict.admission is not None  # noqa: S101 - RATE_LIMITED, USAGE_EXCEEDED
    return domain_problem(LimitExceeded(verdict.admission))


def _no_route(method: str, path: str, *, ambiguous: bool) -> Response:
    if ambiguous:
        detail = (
            "The request path could be read differently by different servers (a . or .. "
            "segment, //, an encoded /, \\ or %, or malformed escapes): denied."
        )
    else:
        detail = (
            f"No rule of the organization's route table matches {method[:16]} "
            f"{path[:200]}: denied by default."
        )
    return problem(403, "no-route", "No route", detail)
