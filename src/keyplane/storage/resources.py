"""The organization's own resources (the built-ins live in the domain catalogue)."""

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

from keyplane.domain.catalogue import Resource
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import (
    resources,
)


class SqlResourceRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def all(self, org_id: str) -> list[Resource]:
        query = select(resources).where(resources.c.org_id == org_id).order_by(resources.c.name)
        return [_resource(row) for row in self._conn.execute(query)]

    def get(self, org_id: str, name: str) -> Resource | None:
        query = select(resources).where(resources.c.org_id == org_id, resources.c.name == name)
        row = self._conn.execute(query).first()
        return _resource(row) if row else None

    def insert(self, org_id: str, resource: Resource) -> None:
        self._conn.execute(insert(resources).values(org_id=org_id, **_resource_fields(resource)))

    def update(self, org_id: str, resource: Resource) -> None:
        values = _resource_fields(resource)
        del values["name"], values["created_at"]
        query = update(resources).where(
            resources.c.org_id == org_id, resources.c.name == resource.name
        )
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, name: str) -> None:
        self._conn.execute(
            delete(resources).where(resources.c.org_id == org_id, resources.c.name == name)
        )


def _resource_fields(resource: Resource) -> dict[str, Any]:
    values = _fields(resource)
    del values["builtin"]
    values["actions"] = list(resource.actions)
    return values


def _resource(row: Row[Any]) -> Resource:
    m = dict(row._mapping)
    del m["org_id"]
    m["actions"] = tuple(m["actions"])
    return Resource(builtin=False, **m)
