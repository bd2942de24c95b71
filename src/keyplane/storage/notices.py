"""Key notices: the once-only record of each expiry warning, expiry and rotation reminder,
and the state of its email."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, or_, select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from keyplane.domain.models import KeyNotice, MailStatus
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import key_notices

_ONCE = ("key_id", "kind", "threshold_days", "due_at")


class SqlNoticeRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def add(self, notice: KeyNotice) -> bool:
        """Records the notice unless the same one exists; True when this call recorded it.

        ``ON CONFLICT DO NOTHING``: a runner that lost the race to another (which claimed the
        key a moment earlier and committed) learns so here, without failing its batch."""
        insert = postgresql_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        statement = insert(key_notices).values(**_fields(notice))
        statement = statement.on_conflict_do_nothing(index_elements=list(_ONCE))
        # RETURNING, not rowcount: psycopg reports no row count for this statement.
        return self._conn.execute(statement.returning(key_notices.c.id)).first() is not None

    def claim_unsent(self, now: datetime, *, until: datetime, limit: int) -> list[KeyNotice]:
        """Notices whose email is pending and not held by another runner, oldest first,
        held until ``until`` (a runner that dies while sending releases them then)."""
        c = key_notices.c
        query = (
            select(key_notices)
            .where(
                c.mail_status == "pending",
                or_(c.mail_claimed_until.is_(None), c.mail_claimed_until <= now),
            )
            .order_by(c.created_at, c.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        notices = [_notice(row) for row in self._conn.execute(query)]
        if notices:
            held = update(key_notices).where(c.id.in_([n.id for n in notices]))
            self._conn.execute(held.values(mail_claimed_until=until))
        return notices

    def set_mail(
        self, notice_id: str, status: MailStatus, attempts: int, *, retry_at: datetime | None
    ) -> None:
        query = update(key_notices).where(key_notices.c.id == notice_id)
        self._conn.execute(
            query.values(mail_status=status, mail_attempts=attempts, mail_claimed_until=retry_at)
        )

    def give_up(self, created_before: datetime) -> list[KeyNotice]:
        """Pending emails of notices recorded before ``created_before`` become ``failed``."""
        c = key_notices.c
        query = (
            select(key_notices)
            .where(c.mail_status == "pending", c.created_at < created_before)
            .with_for_update(skip_locked=True)
        )
        notices = [_notice(row) for row in self._conn.execute(query)]
        if notices:
            failed = update(key_notices).where(c.id.in_([n.id for n in notices]))
            self._conn.execute(failed.values(mail_status="failed", mail_claimed_until=None))
        return notices


def _notice(row: Row[Any]) -> KeyNotice:
    m = dict(row._mapping)
    del m["mail_claimed_until"]
    return KeyNotice(**m)
