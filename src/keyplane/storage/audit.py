"""Audit events: appended to their organization's hash chain (domain/audit.py)."""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import Final

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keyplane.domain.audit import GENESIS, AuditQuery, event_hash
from keyplane.domain.models import AuditEvent
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import audit_chain_heads, audit_events

_BATCH: Final = 1000


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, event: AuditEvent) -> AuditEvent:
        return self.extend([event])[0]

    def extend(self, events: Sequence[AuditEvent]) -> list[AuditEvent]:
        """Appends ``events`` (all of one organization) after its last one, in order;
        answers them with their chain fields. Takes the chain head's row lock just before
        the insert, so it is held from here to COMMIT only: the rest of the unit of work
        runs before it."""
        if not events:
            return []
        org_id = events[0].org_id
        if any(e.org_id != org_id for e in events):
            raise ValueError("one organization's chain at a time")
        seq, prev_hash = self._lock_head(org_id)
        chained: list[AuditEvent] = []
        for event in events:
            seq += 1
            linked = replace(event, seq=seq, prev_hash=prev_hash)
            linked = replace(linked, hash=event_hash(_fields(linked)))
            chained.append(linked)
            prev_hash = linked.hash
        self._conn.execute(insert(audit_events), [_fields(e) for e in chained])
        self._conn.execute(
            update(audit_chain_heads)
            .where(audit_chain_heads.c.org_id == org_id)
            .values(seq=seq, hash=prev_hash)
        )
        return chained

    def page(
        self, org_id: str, query: AuditQuery, *, limit: int, after: str | None
    ) -> list[AuditEvent]:
        """Newest first (by ``seq``), from just below the event ``after`` names."""
        events = audit_events.c
        select_ = select(audit_events).where(events.org_id == org_id)
        if after is not None:
            position = (
                select(events.seq)
                .where(events.org_id == org_id, events.id == after)
                .scalar_subquery()
            )
            select_ = select_.where(events.seq < position)
        if query.actor_id is not None:
            select_ = select_.where(events.actor == query.actor_id)
        if query.target_id is not None:
            select_ = select_.where(events.target_id == query.target_id)
        if query.action_prefix is not None:
            select_ = select_.where(events.action.startswith(query.action_prefix, autoescape=True))
        elif query.action is not None:
            select_ = select_.where(events.action == query.action)
        if query.since is not None:
            select_ = select_.where(events.created_at >= query.since)
        if query.until is not None:
            select_ = select_.where(events.created_at < query.until)
        rows = self._conn.execute(select_.order_by(events.seq.desc()).limit(limit))
        return [AuditEvent(**row) for row in rows.mappings()]

    def heads(self, org_id: str | None = None) -> dict[str, tuple[int, str]]:
        """Every organization with a chain (or an event): its head's seq and hash."""
        found: dict[str, tuple[int, str]] = {}
        orgs = select(audit_events.c.org_id).distinct()
        if org_id is not None:
            orgs = orgs.where(audit_events.c.org_id == org_id)
        for org in self._conn.execute(orgs).scalars():
            found[org] = (0, GENESIS)
        heads = select(audit_chain_heads)
        if org_id is not None:
            heads = heads.where(audit_chain_heads.c.org_id == org_id)
        for row in self._conn.execute(heads):
            found[row.org_id] = (int(row.seq), str(row.hash))
        return found

    def chain(self, org_id: str) -> Generator[AuditEvent]:
        """The organization's events in ``seq`` order, streamed (never all in memory)."""
        rows = self._conn.execute(
            select(audit_events)
            .where(audit_events.c.org_id == org_id)
            .order_by(audit_events.c.seq, audit_events.c.id)
            .execution_options(yield_per=_BATCH)
        )
        try:
            for row in rows.mappings():
                yield AuditEvent(**row)
        finally:  # a reader that stops early closes the server-side cursor with the generator
            rows.close()

    def _lock_head(self, org_id: str) -> tuple[int, str]:
        # The head row exists from the organization's first event on; creating it may race
        # with another writer, so it is an insert that yields to an existing row.
        dialect = self._conn.dialect.name
        make = pg_insert if dialect == "postgresql" else sqlite_insert
        self._conn.execute(
            make(audit_chain_heads)
            .values(org_id=org_id, seq=0, hash=GENESIS)
            .on_conflict_do_nothing(index_elements=["org_id"])
        )
        head = self._conn.execute(
            select(audit_chain_heads.c.seq, audit_chain_heads.c.hash)
            .where(audit_chain_heads.c.org_id == org_id)
            .with_for_update()  # PostgreSQL: waits for a concurrent appender's COMMIT
        ).one()
        return int(head.seq), str(head.hash)
