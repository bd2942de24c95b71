"""Console users and their set-password tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    delete,
    func,
    insert,
    select,
    update,
)

from keyplane.domain.models import (
    User,
)
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import (
    users,
)


class SqlUserRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, user_id: str) -> User | None:
        query = select(users).where(users.c.org_id == org_id, users.c.id == user_id)
        row = self._conn.execute(query).first()
        return _user(row) if row else None

    def find_by_email(self, email: str) -> User | None:
        row = self._conn.execute(select(users).where(users.c.email == email)).first()
        return _user(row) if row else None

    def find_owner(self, org_id: str) -> User | None:
        query = (
            select(users)
            .where(users.c.org_id == org_id, users.c.role == "owner")
            .order_by(users.c.id)
        )
        row = self._conn.execute(query).first()
        return _user(row) if row else None

    def find_by_setup_digest(self, digest: str) -> tuple[User, datetime] | None:
        row = self._conn.execute(select(users).where(users.c.setup_digest == digest)).first()
        if row is None or row.setup_expires_at is None:
            return None
        return _user(row), row.setup_expires_at

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[User]:
        query = select(users).where(users.c.org_id == org_id)
        if after is not None:
            query = query.where(users.c.id < after)
        rows = self._conn.execute(query.order_by(users.c.id.desc()).limit(limit))
        return [_user(row) for row in rows]

    def count_owners(self, org_id: str) -> int:
        query = select(func.count()).where(users.c.org_id == org_id, users.c.role == "owner")
        return int(self._conn.scalar(query) or 0)

    def insert(self, user: User) -> None:
        self._conn.execute(insert(users).values(**_fields(user)))

    def update(self, user: User) -> None:
        query = update(users).where(users.c.org_id == user.org_id, users.c.id == user.id)
        self._conn.execute(query.values(name=user.name, role=user.role))

    def set_password(self, user_id: str, password_hash: str) -> None:
        query = update(users).where(users.c.id == user_id)
        self._conn.execute(
            query.values(password_hash=password_hash, setup_digest=None, setup_expires_at=None)
        )

    def set_setup_token(
        self, user_id: str, digest: str | None, expires_at: datetime | None
    ) -> None:
        query = update(users).where(users.c.id == user_id)
        self._conn.execute(query.values(setup_digest=digest, setup_expires_at=expires_at))

    def delete(self, org_id: str, user_id: str) -> None:
        self._conn.execute(delete(users).where(users.c.org_id == org_id, users.c.id == user_id))


def _user(row: Row[Any]) -> User:
    m = dict(row._mapping)
    del m["setup_digest"], m["setup_expires_at"]
    return User(**m)
