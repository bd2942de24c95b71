"""The one table from domain errors to RFC 9457 problem documents.

Every 4xx leaves here as ``application/problem+json`` with ``type``, ``title``, ``status``,
``detail`` and, for invalid input, ``errors: [{field, message}]``. Nothing a client sends
may produce a 500: unexpected exceptions become a 500 problem without internals, and are
logged (the log filter in ``keyplane.logs`` redacts anything shaped like a key).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any, Final

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from keyplane.domain.delegation import DepthExceeded, NotTheKey
from keyplane.domain.errors import (
    Conflict,
    Escalation,
    FieldError,
    Forbidden,
    InvalidInput,
    IpForbidden,
    KeyplaneError,
    LimitExceeded,
    LimitsNeedRedis,
    MissingScope,
    NotFound,
    PartnerKeysUnavailable,
    SignatureRefused,
    StorageUnavailable,
    Throttled,
    Unauthenticated,
)
from keyplane.domain.ratelimits import Admission

log = logging.getLogger(__name__)

PROBLEM_JSON: Final = "application/problem+json"
TYPE_BASE: Final = "urn:keyplane:problem:"

# domain error -> (status, type slug, title)
TABLE: Final[dict[type[KeyplaneError], tuple[int, str, str]]] = {
    Unauthenticated: (401, "unauthenticated", "Authentication required"),
    MissingScope: (403, "missing-scope", "Missing scope"),
    Escalation: (403, "scope-escalation", "Cannot grant scopes you do not hold"),
    Forbidden: (403, "forbidden", "Forbidden"),
    NotFound: (404, "not-found", "Not found"),
    Conflict: (409, "conflict", "Conflict"),
    LimitsNeedRedis: (409, "limits-need-redis", "Limits need KEYPLANE_REDIS_URL"),
    InvalidInput: (422, "validation-error", "Invalid input"),
    Throttled: (429, "too-many-requests", "Too many requests"),
    IpForbidden: (403, "ip-forbidden", "Address not allowed"),
    NotTheKey: (403, "not-the-key", "Only the key itself can delegate"),
    DepthExceeded: (403, "delegation-depth", "Delegation too deep"),
    LimitExceeded: (429, "rate-limited", "Too many requests"),
    SignatureRefused: (401, "signature-refused", "Signature refused"),
    PartnerKeysUnavailable: (503, "partner-keys-unavailable", "Cannot verify the signature"),
}

_METHODS: Final = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
_HTTP_TITLES: Final = {
    400: ("bad-request", "Bad request"),
    404: ("not-found", "Not found"),
    405: ("method-not-allowed", "Method not allowed"),
    413: ("payload-too-large", "Request body too large"),
    415: ("unsupported-media-type", "Unsupported media type"),
}


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    *,
    errors: Sequence[FieldError] = (),
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if errors:
        body["errors"] = [{"field": e.field, "message": e.message} for e in errors]
    body.update(extra)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_JSON, headers=headers
    )


def ratelimit_headers(admission: Admission) -> dict[str, str]:
    """RateLimit-Policy and RateLimit (draft-ietf-httpapi-ratelimit-headers, structured
    field lists): one item per named limit, ``q`` its quota and ``w`` its window in
    seconds; ``r`` what remains and ``t`` the seconds until it is whole again. Names are
    sf-strings (limit names are limited to [a-z0-9_-], so they need no escaping)."""
    if not admission.limits:
        return {}
    policy = ", ".join(
        f'"{s.limit.name}";q={s.limit.limit};w={s.limit.period_seconds}' for s in admission.limits
    )
    current = ", ".join(
        f'"{s.limit.name}";r={s.remaining};t={math.ceil(s.reset_seconds)}' for s in admission.limits
    )
    return {"RateLimit-Policy": policy, "RateLimit": current}


def domain_problem(exc: KeyplaneError) -> Response:
    for cls in type(exc).__mro__:
        if cls in TABLE:
            status, slug, title = TABLE[cls]
            break
    else:  # pragma: no cover - every KeyplaneError subclass is in the table
        status, slug, title = 500, "internal", "Internal error"
    extra: dict[str, Any] = {}
    headers = None
    errors: Sequence[FieldError] = ()
    if isinstance(exc, InvalidInput):
        errors = exc.errors
    elif isinstance(exc, Unauthenticated):
        headers = {"WWW-Authenticate": 'Bearer realm="keyplane"'}
    elif isinstance(exc, MissingScope):
        extra["missing_scope"] = exc.scope
    elif isinstance(exc, Escalation):
        errors = [FieldError(exc.field, f"you do not hold {s!r}") for s in exc.scopes]
    elif isinstance(exc, Throttled | PartnerKeysUnavailable):
        headers = {"Retry-After": str(exc.retry_after)}
    elif isinstance(exc, LimitExceeded):
        headers = ratelimit_headers(exc.admission)
        if exc.retry_after:
            headers["Retry-After"] = str(exc.retry_after)
        extra["code"] = exc.code
        if exc.code == "USAGE_EXCEEDED":
            slug, title = "usage-exceeded", "Quota used up"
    elif isinstance(exc, Conflict) and exc.field:
        errors = [FieldError(exc.field, str(exc))]
    return problem(status, slug, title, str(exc), errors=errors, headers=headers, **extra)


def _field_name(loc: Sequence[str | int]) -> str:
    parts = list(loc[1:]) if loc and loc[0] in ("body", "query", "path", "header") else list(loc)
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part.startswith(("function-", "constrained-")) or part in ("list", "dict"):
            continue
        else:
            name += f".{part}" if name else part
    return name or "body"


def validation_errors(raw: Sequence[dict[str, Any]]) -> list[FieldError]:
    errors: list[FieldError] = []
    for error in raw:
        kind = error.get("type", "")
        ctx = error.get("ctx") or {}
        if kind == "immutable":
            errors.extend(
                FieldError(f, "is immutable: it cannot change after creation")
                for f in ctx["fields"]
            )
            continue
        if kind == "nul_character":
            errors.append(FieldError(ctx["field"], "must not contain NUL characters"))
            continue
        field = _field_name(error.get("loc", ()))
        if kind == "extra_forbidden":
            message = "is not a field of this request"
        elif kind == "missing":
            message = "is required"
        else:
            message = str(error.get("msg", "is invalid"))
            message = message.removeprefix("Value error, ")
        errors.append(FieldError(field, message))
    return errors


def unavailable_problem(exc: StorageUnavailable) -> Response:
    """503 for a unit of work the database failed (rolled back: nothing was changed)."""
    return problem(
        503,
        "unavailable",
        "Service unavailable",
        str(exc),
        headers={"Retry-After": str(exc.retry_after)},
    )


async def on_storage_unavailable(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StorageUnavailable)  # noqa: S101 - registered for it only
    return unavailable_problem(exc)


async def _on_domain_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, KeyplaneError)  # noqa: S101 - registered for KeyplaneError only
    return domain_problem(exc)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)  # noqa: S101 - registered for it only
    raw = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in raw):
        return problem(
            400, "malformed-json", "Malformed JSON", "The request body is not valid JSON."
        )
    content_type = request.headers.get("content-type", "").lower()
    if request.method in ("POST", "PATCH", "PUT") and "json" not in content_type:
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            "Send the request body as JSON with 'Content-Type: application/json'.",
        )
    errors = validation_errors(raw)
    detail = "; ".join(f"{e.field}: {e.message}" for e in errors)
    return problem(422, "validation-error", "Invalid input", detail, errors=errors)


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)  # noqa: S101 - registered for it only
    slug, title = _HTTP_TITLES.get(exc.status_code, ("http-error", "HTTP error"))
    detail = exc.detail if isinstance(exc.detail, str) else title
    headers = dict(exc.headers) if exc.headers else {}
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem(exc.status_code, slug, title, detail, headers=headers or None)


def _allowed_methods(request: Request) -> list[str]:
    """Every method the path answers. Starlette names only the first matching route's, but
    FastAPI makes one route per method, so GET and POST on one path are two routes."""
    documented = request.app.openapi()["paths"].get(request.url.path)
    if documented is not None:
        # A documented literal path (``/v1/keys/verify``) is not also an id that a
        # templated route (``/v1/keys/{key_id}``) would take: the document decides.
        return sorted(method.upper() for method in documented)
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]


async def _on_unexpected(_request: Request, exc: Exception) -> Response:
    log.error("unexpected error", exc_info=exc)
    return problem(
        500, "internal", "Internal error", "Something went wrong on our side; it was logged."
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(KeyplaneError, _on_domain_error)
    app.add_exception_handler(StorageUnavailable, on_storage_unavailable)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
