"""What list and error responses look like in OpenAPI, shared by every router."""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import FastAPI, Query

from keyplane.api.errors import PROBLEM_JSON
from keyplane.api.schemas.common import Problem, ValidationProblem
from keyplane.domain.limits import PAGE_MAX

Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]

_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, a key in the URL).",
    401: "Missing, malformed, unknown, disabled or expired API key.",
    403: "The key lacks the scope this operation needs, or tried to grant more than it holds.",
    404: "No such object in the caller's organization.",
    409: "Conflicts with the current state (a name taken, an object in use; a rate limit or "
    "quota while several keyplane processes serve one database without KEYPLANE_REDIS_URL, "
    "type `urn:keyplane:problem:limits-need-redis`).",
    413: "Request body too large.",
    415: "The body is not sent as `Content-Type: application/json`.",
    422: "Invalid input; `errors` names each field and the reason.",
    429: "The calling key is over one of its rate limits (`Retry-After` says when to retry) "
    "or out of quota (`code` USAGE_EXCEEDED; `Retry-After` until its refill, if any). "
    "Every response to a key with rate limits carries `RateLimit-Policy` and `RateLimit`.",
    503: "The database could not complete the request (nothing was changed), or the "
    "calling or verified key's rate limits or quota cannot be checked because Redis is "
    "unreachable and KEYPLANE_REDIS_FAILURE says closed (the default for quotas). Retry "
    "after `Retry-After` seconds.",
}
# What any operation taking a JSON body can answer, whatever its route declares: the body
# is read and parsed before the route runs.
_BODY_STATUSES: Final = (400, 413, 415, 422)
_GUARD_STATUSES: Final = (413,)
_FASTAPI_422: Final = "HTTPValidationError"


def _problem_response(status: int) -> dict[str, Any]:
    model = ValidationProblem if status == 422 else Problem
    return {
        "description": _DESCRIPTIONS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given problem statuses. 400, 401, 403 and 413 always
    apply (the request guard and authentication run before any route), and so do 429 (the
    calling key's own rate limits and quota) and 503: any operation reads the database,
    and every mutation writes its audit event there."""
    wanted = sorted({400, 401, 403, 413, 429, 503, *statuses})
    return {status: _problem_response(status) for status in wanted}


def document_problems(app: FastAPI) -> None:
    """Completes the app's OpenAPI document: the problem schemas, and the body problems of
    every operation with a request body, so that a new route cannot forget one."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = _complete(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented extension point


def _complete(spec: dict[str, Any]) -> dict[str, Any]:
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    for model in (Problem, ValidationProblem):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            # FastAPI adds its own 422 (HTTPValidationError) to operations taking parameters;
            # keyplane answers every 422 with a problem document.
            if _FASTAPI_422 in str(responses.get("422", "")):
                responses["422"] = _problem_response(422)
            body = operation.get("requestBody", {}).get("content", {})
            # A JSON body's problems; a form body (the OAuth token endpoint) answers its
            # own errors, and only the request guard's ones as problems.
            for status in _BODY_STATUSES if "application/json" in body else _GUARD_STATUSES:
                if body:
                    responses.setdefault(str(status), _problem_response(status))
    if _FASTAPI_422 not in str(spec["paths"]):
        schemas.pop(_FASTAPI_422, None)
        schemas.pop("ValidationError", None)
    return spec
