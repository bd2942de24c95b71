"""``kp.audit_events``: the organization's audit log, by pages or as one streamed export
(``/v1/audit-events``)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Literal

from keyplane_client._models import AuditEvent
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import AsyncAPI, Call, Params, SyncAPI, moment

Format = Literal["jsonl", "csv"]


def _filters(
    actor_id: str | None,
    action: str | None,
    target_id: str | None,
    start: datetime | str | None,
    end: datetime | str | None,
) -> dict[str, str | int | None]:
    return {
        "actor_id": actor_id,
        "action": action,
        "target_id": target_id,
        "from": moment(start),
        "to": moment(end),
    }


def _page(filters: Params, cursor: str | None, limit: int | None) -> Call:
    return Call("GET", "/v1/audit-events", params={**filters, "cursor": cursor, "limit": limit})


def _export(filters: Params, format: Format) -> Call:
    return Call("GET", "/v1/audit-events/export", params={**filters, "format": format})


def _lines(buffer: bytearray) -> Iterator[AuditEvent]:
    while (end := buffer.find(b"\n")) >= 0:
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        if line.strip():
            yield AuditEvent.model_validate_json(line)


class AuditEvents:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def list(
        self,
        *,
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        limit: int | None = None,
    ) -> Paginator[AuditEvent]:
        """Events newest first: by ``actor_id``, ``action`` (``key.create``, or a prefix
        ending in a dot: ``key.``), ``target_id``, from ``start`` (inclusive) to ``end``."""
        filters = _filters(actor_id, action, target_id, start, end)
        return Paginator(
            lambda cursor: self._client._request(Page[AuditEvent], _page(filters, cursor, limit))
        )

    def export(
        self,
        *,
        format: Format = "jsonl",
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> Iterator[bytes]:
        """The matching events as a file (JSON Lines or CSV with a header), streamed in
        chunks as the server writes them: ``for chunk in …: out.write(chunk)``."""
        filters = _filters(actor_id, action, target_id, start, end)
        return self._client._stream(_export(filters, format))

    def export_events(
        self,
        *,
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> Iterator[AuditEvent]:
        """The export as typed events, parsed line by line while it streams."""
        buffer = bytearray()
        filters = _filters(actor_id, action, target_id, start, end)
        for chunk in self._client._stream(_export(filters, "jsonl")):
            buffer += chunk
            yield from _lines(buffer)
        buffer += b"\n"
        yield from _lines(buffer)


class AsyncAuditEvents:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    def list(
        self,
        *,
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        limit: int | None = None,
    ) -> AsyncPaginator[AuditEvent]:
        filters = _filters(actor_id, action, target_id, start, end)

        async def fetch(cursor: str | None) -> Page[AuditEvent]:
            return await self._client._request(Page[AuditEvent], _page(filters, cursor, limit))

        return AsyncPaginator(fetch)

    def export(
        self,
        *,
        format: Format = "jsonl",
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> AsyncIterator[bytes]:
        """``async for chunk in kp.audit_events.export(format="csv"):``"""
        filters = _filters(actor_id, action, target_id, start, end)
        return self._client._stream(_export(filters, format))

    async def export_events(
        self,
        *,
        actor_id: str | None = None,
        action: str | None = None,
        target_id: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
    ) -> AsyncIterator[AuditEvent]:
        buffer = bytearray()
        filters = _filters(actor_id, action, target_id, start, end)
        async for chunk in self._client._stream(_export(filters, "jsonl")):
            buffer += chunk
            for event in _lines(buffer):
                yield event
        buffer += b"\n"
        for event in _lines(buffer):
            yield event
