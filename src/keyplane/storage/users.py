"""Identities (who signs in) and memberships (``usr_…``: an identity's role in one
organization, with its set-password link)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, exists, func, insert, select, update

from keyplane.domain.models import Identity, User
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import identities, memberships


class SqlIdentityRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, identity_id: str) -> Identity | None:
        row = self._conn.execute(select(identities).where(identities.c.id == identity_id)).first()
        return Identity(**dict(row._mapping)) if row else None

    def find_by_email(self, email: str) -> Identity | None:
        row = self._conn.execute(select(identities).where(identities.c.email == email)).first()
        return Identity(**dict(row._mapping)) if row else None

    def insert(self, identity: Identity) -> None:
        self._conn.execute(insert(identities).values(**_fields(identity)))

    def set_password(self, identity_id: str, password_hash: str) -> None:
        query = update(identities).where(identities.c.id == identity_id)
        self._conn.execute(query.values(password_hash=password_hash))

    def set_first_password(self, identity_id: str, password_hash: str) -> bool:
        """Sets the password only if the identity has none yet (one statement, so two
        concurrent first passwords cannot both win); True when it did."""
        query = update(identities).where(
            identities.c.id == identity_id, identities.c.password_hash.is_(None)
        )
        return bool(self._conn.execute(query.values(password_hash=password_hash)).rowcount)

    def delete_if_unused(self, identity_id: str) -> bool:
        """Deletes the identity when no membership is left; True when it did."""
        used = exists().where(memberships.c.identity_id == identities.c.id)
        query = delete(identities).where(identities.c.id == identity_id, ~used)
        return bool(self._conn.execute(query).rowcount)


_MEMBERS: Select[Any] = select(
    memberships.c.id,
    memberships.c.org_id,
    identities.c.email,
    memberships.c.name,
    memberships.c.role,
    memberships.c.created_at,
    memberships.c.identity_id,
    identities.c.password_hash,
    memberships.c.pending,
    memberships.c.setup_digest,
    memberships.c.setup_expires_at,
).join_from(memberships, identities, memberships.c.identity_id == identities.c.id)


class SqlUserRepository:
    """Memberships, each read with its identity's email and password hash."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, user_id: str) -> User | None:
        return self._one(
            _MEMBERS.where(memberships.c.org_id == org_id, memberships.c.id == user_id)
        )

    def find_by_id(self, user_id: str) -> User | None:
        """Whatever the organization: for the operator's command line only."""
        return self._one(_MEMBERS.where(memberships.c.id == user_id))

    def find_in_org(self, org_id: str, identity_id: str) -> User | None:
        return self._one(
            _MEMBERS.where(memberships.c.org_id == org_id, memberships.c.identity_id == identity_id)
        )

    def of_identity(self, identity_id: str) -> list[User]:
        query = _MEMBERS.where(memberships.c.identity_id == identity_id)
        return [_user(row) for row in self._conn.execute(query.order_by(memberships.c.id))]

    def find_owner(self, org_id: str) -> User | None:
        return self._one(
            _MEMBERS.where(memberships.c.org_id == org_id, memberships.c.role == "owner")
            .order_by(memberships.c.id)
            .limit(1)
        )

    def owners(self, org_id: str) -> list[User]:
        query = _MEMBERS.where(memberships.c.org_id == org_id, memberships.c.role == "owner")
        return [_user(row) for row in self._conn.execute(query.order_by(memberships.c.id))]

    def with_roles(self, org_id: str, roles: Sequence[str]) -> list[User]:
        query = _MEMBERS.where(memberships.c.org_id == org_id, memberships.c.role.in_(roles))
        return [_user(row) for row in self._conn.execute(query.order_by(memberships.c.id))]

    def find_by_setup_digest(self, digest: str) -> tuple[User, datetime] | None:
        row = self._conn.execute(_MEMBERS.where(memberships.c.setup_digest == digest)).first()
        if row is None or row.setup_expires_at is None:
            return None
        return _user(row), row.setup_expires_at

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[User]:
        query = _MEMBERS.where(memberships.c.org_id == org_id)
        if after is not None:
            query = query.where(memberships.c.id < after)
        rows = self._conn.execute(query.order_by(memberships.c.id.desc()).limit(limit))
        return [_user(row) for row in rows]

    def count_owners(self, org_id: str) -> int:
        query = select(func.count()).where(
            memberships.c.org_id == org_id, memberships.c.role == "owner"
        )
        return int(self._conn.scalar(query) or 0)

    def insert(self, user: User) -> None:
        values = _fields(user)
        for derived in ("email", "password_hash"):
            del values[derived]
        self._conn.execute(insert(memberships).values(**values))

    def update(self, user: User) -> None:
        query = update(memberships).where(
            memberships.c.org_id == user.org_id, memberships.c.id == user.id
        )
        self._conn.execute(query.values(name=user.name, role=user.role))

    def set_setup_token(
        self, user_id: str, digest: str | None, expires_at: datetime | None
    ) -> None:
        query = update(memberships).where(memberships.c.id == user_id)
        self._conn.execute(query.values(setup_digest=digest, setup_expires_at=expires_at))

    def activate(self, user_id: str) -> None:
        query = update(memberships).where(memberships.c.id == user_id)
        self._conn.execute(query.values(pending=False, setup_digest=None, setup_expires_at=None))

    def delete(self, org_id: str, user_id: str) -> None:
        self._conn.execute(
            delete(memberships).where(memberships.c.org_id == org_id, memberships.c.id == user_id)
        )

    def _one(self, query: Select[Any]) -> User | None:
        row = self._conn.execute(query).first()
        return _user(row) if row else None


def _user(row: Row[Any]) -> User:
    m = dict(row._mapping)
    del m["setup_digest"], m["setup_expires_at"]
    return User(**m)
