"""What list and error responses look like in OpenAPI, shared by every router."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query

from keyplane.api.schemas.common import Problem, ValidationProblem
from keyplane.domain.limits import PAGE_MAX

Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description="Page size.")]
Cursor = Annotated[str | None, Query(description="`next_cursor` of the previous page.")]

_DESCRIPTIONS = {
    400: "Malformed request (bad JSON, a key in the URL).",
    401: "Missing, malformed, unknown, disabled or expired API key.",
    403: "The key lacks the scope this operation needs, or tried to grant more than it holds.",
    404: "No such object in the caller's organization.",
    409: "Conflicts with the current state (a name taken, an object in use).",
    413: "Request body too large.",
    422: "Invalid input; `errors` names each field and the reason.",
    503: "The database could not complete the request; nothing was changed. Retry after "
    "`Retry-After` seconds.",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the given problem statuses (401, 403 and 503 always apply:
    any operation reads the database, and every mutation writes its audit event there)."""
    wanted = sorted({400, 401, 403, 413, 503, *statuses})
    return {
        status: {
            "model": ValidationProblem if status == 422 else Problem,
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {}},
        }
        for status in wanted
    }
