"""/v1/audit-events: the organization's audit log, as pages and as a streamed export."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Annotated, Final, Literal

import orjson
from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse

from keyplane.api.deps import AuditRead, Services
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.audit import CSV_COLUMNS, AuditEventOut
from keyplane.api.schemas.common import Paged
from keyplane.domain.audit import AuditQuery
from keyplane.domain.errors import InvalidInput
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.domain.models import AuditEvent

router = APIRouter(prefix="/v1/audit-events", tags=["audit"])

CHUNK_BYTES: Final = 64 * 1024
MEDIA_TYPES: Final = {"csv": "text/csv; charset=utf-8", "jsonl": "application/jsonl"}


def _query(
    actor_id: Annotated[str | None, Query(description="Events by this user or key id.")] = None,
    action: Annotated[
        str | None,
        Query(description="An action (`key.create`), or a prefix ending in a dot (`key.`)."),
    ] = None,
    target_id: Annotated[str | None, Query(description="Events about this object id.")] = None,
    since: Annotated[
        str | None,
        Query(
            alias="from",
            description="From this time, inclusive (RFC 3339, with a time zone).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
    until: Annotated[
        str | None,
        Query(
            alias="to",
            description="Until this time, exclusive (RFC 3339, with a time zone).",
            json_schema_extra={"format": "date-time"},
        ),
    ] = None,
) -> AuditQuery:
    return AuditQuery(actor_id, action, target_id, _moment("from", since), _moment("to", until))


def _moment(field: str, value: str | None) -> datetime | None:
    # Parsed here rather than by pydantic, whose lax mode takes a number as a Unix time:
    # the document promises an RFC 3339 string, and anything else is a 422.
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput.field(
            field, "must be an RFC 3339 time such as 2026-11-30T16:00:00Z"
        ) from None


Filters = Annotated[AuditQuery, Depends(_query)]


@router.get("", responses=problems(422), summary="List audit events")
def list_audit_events(
    principal: AuditRead,
    kp: Services,
    query: Filters,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> Paged[AuditEventOut]:
    """Newest first. Every mutation, sign-in and password change of the organization."""
    page = kp.audit.page(principal, query, limit=limit, cursor=cursor)
    return Paged[AuditEventOut](
        data=[AuditEventOut.of(e) for e in page.items], next_cursor=page.next_cursor
    )


@router.get(
    "/export",
    response_class=StreamingResponse,
    responses={
        **problems(422),
        200: {
            "description": "Every matching event, newest first, streamed: JSON Lines (one "
            "`AuditEventOut` per line) or CSV (a header, then one row per event).",
            "content": {
                MEDIA_TYPES["jsonl"]: {"schema": {"$ref": "#/components/schemas/AuditEventOut"}},
                MEDIA_TYPES["csv"]: {"schema": {"type": "string"}},
            },
        },
    },
    summary="Export audit events",
)
def export_audit_events(
    principal: AuditRead,
    kp: Services,
    query: Filters,
    format: Annotated[
        Literal["csv", "jsonl"], Query(description="`csv` (with a header) or `jsonl`.")
    ] = "jsonl",
) -> StreamingResponse:
    """The same range as the list, in one download: written as it is read, a page of
    events at a time, so an export of millions of events never sits in memory."""
    events = kp.audit.export(principal, query)  # checks the filters before the 200 starts
    lines = _csv(events) if format == "csv" else _jsonl(events)
    return StreamingResponse(
        _chunks(lines),
        media_type=MEDIA_TYPES[format],
        headers={"Content-Disposition": f'attachment; filename="audit-events.{format}"'},
    )


def _chunks(lines: Iterable[bytes]) -> Iterator[bytes]:
    # One chunk per ~64 KB: each chunk costs a trip through the threadpool.
    buffer = bytearray()
    for line in lines:
        buffer += line
        if len(buffer) >= CHUNK_BYTES:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


def _jsonl(events: Iterable[AuditEvent]) -> Iterator[bytes]:
    for event in events:
        yield AuditEventOut.of(event).model_dump_json().encode() + b"\n"


def _csv(events: Iterable[AuditEvent]) -> Iterator[bytes]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for event in events:
        writer.writerow(_cell(value) for value in _row(event))
        yield out.getvalue().encode()
        out.seek(0)
        out.truncate()


def _row(event: AuditEvent) -> tuple[object, ...]:
    return (
        event.id,
        event.created_at.isoformat(),
        event.seq,
        event.actor_type,
        event.actor,
        event.actor_name,
        event.action,
        event.target_type,
        event.target_id,
        event.target_name,
        event.client_ip,
        event.user_agent,
        orjson.dumps(event.changes, option=orjson.OPT_SORT_KEYS).decode(),
        orjson.dumps(event.details, option=orjson.OPT_SORT_KEYS).decode(),
        event.prev_hash,
        event.hash,
    )


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: names and user agents are anyone's input, and
    a cell starting with = + - @ would run as a formula (OWASP "CSV injection")."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
