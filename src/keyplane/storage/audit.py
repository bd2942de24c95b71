"""Audit events."""

from __future__ import annotations

from sqlalchemy import (
    Connection,
    insert,
)

from keyplane.domain.models import (
    AuditEvent,
)
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import (
    audit_events,
)


class SqlAuditRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def append(self, event: AuditEvent) -> None:
        self._conn.execute(insert(audit_events).values(**_fields(event)))
