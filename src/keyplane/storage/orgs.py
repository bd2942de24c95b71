"""Organizations."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Connection,
    Row,
    insert,
    select,
    update,
)

from keyplane.domain.models import (
    Organization,
)
from keyplane.domain.ratelimits import ratelimits_json, ratelimits_of
from keyplane.domain.routes import route_table_json, route_table_of
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import (
    organizations,
)


class SqlOrgRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str) -> Organization | None:
        row = self._conn.execute(select(organizations).where(organizations.c.id == org_id)).first()
        return _org(row) if row else None

    def find_by_name(self, name: str) -> Organization | None:
        query = (
            select(organizations).where(organizations.c.name == name).order_by(organizations.c.id)
        )
        row = self._conn.execute(query).first()
        return _org(row) if row else None

    def with_rotation_period(self) -> list[Organization]:
        query = select(organizations).where(organizations.c.rotation_period_days.is_not(None))
        return [_org(row) for row in self._conn.execute(query.order_by(organizations.c.id))]

    def insert(self, org: Organization) -> None:
        self._conn.execute(insert(organizations).values(**_org_fields(org)))

    def update(self, org: Organization) -> None:
        values = _org_fields(org)
        del values["id"], values["created_at"]
        self._conn.execute(
            update(organizations).where(organizations.c.id == org.id).values(**values)
        )


def _org_fields(org: Organization) -> dict[str, Any]:
    values = _fields(org)
    values["expiry_warning_days"] = list(org.expiry_warning_days)
    values["ratelimits"] = ratelimits_json(org.ratelimits)
    values["route_table"] = route_table_json(org.route_table)
    return values


def _org(row: Row[Any]) -> Organization:
    m = row._mapping
    return Organization(
        id=m["id"],
        name=m["name"],
        require_explicit_scopes=bool(m["require_explicit_scopes"]),
        max_key_lifetime_days=m["max_key_lifetime_days"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        expired_key_retention_days=m["expired_key_retention_days"],
        expiry_warning_days=tuple(m["expiry_warning_days"]),
        rotation_period_days=m["rotation_period_days"],
        ratelimits=ratelimits_of(m["ratelimits"]),
        leaked_key_action=m["leaked_key_action"],
        route_table=route_table_of(m["route_table"]),
    )
