"""Profiles."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    delete,
    insert,
    select,
    update,
)

from keyplane.domain.models import (
    Profile,
)
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import (
    profiles,
)


class SqlProfileRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, profile_id: str) -> Profile | None:
        query = select(profiles).where(profiles.c.org_id == org_id, profiles.c.id == profile_id)
        row = self._conn.execute(query).first()
        return _profile(row) if row else None

    def find_by_name(self, org_id: str, name: str) -> Profile | None:
        query = select(profiles).where(profiles.c.org_id == org_id, profiles.c.name == name)
        row = self._conn.execute(query).first()
        return _profile(row) if row else None

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Profile]:
        query = select(profiles).where(profiles.c.org_id == org_id)
        if after is not None:
            query = query.where(profiles.c.id < after)
        rows = self._conn.execute(query.order_by(profiles.c.id.desc()).limit(limit))
        return [_profile(row) for row in rows]

    def insert(self, profile: Profile) -> None:
        self._conn.execute(insert(profiles).values(**_fields(profile)))

    def update(self, profile: Profile) -> None:
        values = _fields(profile)
        del values["id"], values["org_id"], values["created_at"]
        query = update(profiles).where(
            profiles.c.org_id == profile.org_id, profiles.c.id == profile.id
        )
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, profile_id: str) -> None:
        self._conn.execute(
            delete(profiles).where(profiles.c.org_id == org_id, profiles.c.id == profile_id)
        )


def _profile(row: Row[Any]) -> Profile:
    return Profile(**dict(row._mapping))
