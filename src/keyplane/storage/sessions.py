"""Console sessions, by token digest."""

from __future__ import annotations

from sqlalchemy import (
    Connection,
    delete,
    insert,
    select,
)

from keyplane.domain.models import (
    ConsoleSession,
)
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import (
    console_sessions,
)


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, session: ConsoleSession) -> None:
        self._conn.execute(insert(console_sessions).values(**_fields(session)))

    def find(self, digest: str) -> ConsoleSession | None:
        query = select(console_sessions).where(console_sessions.c.digest == digest)
        row = self._conn.execute(query).first()
        return ConsoleSession(**dict(row._mapping)) if row else None

    def delete(self, digest: str) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.digest == digest))

    def delete_for_user(self, user_id: str) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))
