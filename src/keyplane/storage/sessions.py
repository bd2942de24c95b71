"""Console sessions, by token digest."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, delete, insert, select, update

from keyplane.domain.models import ConsoleSession
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import console_sessions


class SqlSessionRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def insert(self, session: ConsoleSession) -> None:
        self._conn.execute(insert(console_sessions).values(**_fields(session)))

    def find(self, digest: str) -> ConsoleSession | None:
        query = select(console_sessions).where(console_sessions.c.digest == digest)
        row = self._conn.execute(query).first()
        return ConsoleSession(**dict(row._mapping)) if row else None

    def bind(self, digest: str, user_id: str, org_id: str) -> None:
        query = update(console_sessions).where(console_sessions.c.digest == digest)
        self._conn.execute(query.values(user_id=user_id, org_id=org_id))

    def delete(self, digest: str) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.digest == digest))

    def delete_for_user(self, user_id: str) -> None:
        self._conn.execute(delete(console_sessions).where(console_sessions.c.user_id == user_id))

    def delete_for_identity(self, identity_id: str) -> None:
        query = delete(console_sessions).where(console_sessions.c.identity_id == identity_id)
        self._conn.execute(query)

    def delete_expired(self, now: datetime, limit: int) -> int:
        """At most ``limit`` sessions expired before ``now``: bounded work per call."""
        oldest = (
            select(console_sessions.c.id)
            .where(console_sessions.c.expires_at <= now)
            .order_by(console_sessions.c.expires_at)
            .limit(limit)
        )
        query = delete(console_sessions).where(console_sessions.c.id.in_(oldest.scalar_subquery()))
        return int(self._conn.execute(query).rowcount)
