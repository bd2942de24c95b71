"""Apps, with the number of keys each holds."""

from __future__ import annotations

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
    App,
)
from keyplane.domain.ratelimits import ratelimits_json, ratelimits_of
from keyplane.storage.rows import fields as _fields
from keyplane.storage.scopes import grants_everything
from keyplane.storage.tables import (
    api_keys,
    apps,
)


def _key_count() -> Any:
    return (
        select(func.count())
        .where(api_keys.c.app_id == apps.c.id)
        .correlate(apps)
        .scalar_subquery()
        .label("key_count")
    )


class SqlAppRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, app_id: str) -> App | None:
        query = select(apps, _key_count()).where(apps.c.org_id == org_id, apps.c.id == app_id)
        row = self._conn.execute(query).first()
        return _app(row) if row else None

    def find_by_name(self, org_id: str, name: str) -> App | None:
        query = select(apps, _key_count()).where(apps.c.org_id == org_id, apps.c.name == name)
        row = self._conn.execute(query).first()
        return _app(row) if row else None

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[App]:
        query = select(apps, _key_count()).where(apps.c.org_id == org_id)
        if after is not None:
            query = query.where(apps.c.id < after)
        rows = self._conn.execute(query.order_by(apps.c.id.desc()).limit(limit))
        return [_app(row) for row in rows]

    def insert(self, app: App) -> None:
        values = _fields(app)
        del values["key_count"]
        values["ratelimits"] = ratelimits_json(app.ratelimits)
        self._conn.execute(insert(apps).values(**values))

    def update(self, app: App) -> None:
        values = {
            k: v
            for k, v in _fields(app).items()
            if k in ("name", "description", "scopes", "updated_at")
        }
        values["ratelimits"] = ratelimits_json(app.ratelimits)
        query = update(apps).where(apps.c.org_id == app.org_id, apps.c.id == app.id)
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, app_id: str) -> None:
        # Keys go first explicitly: SQLite enforces ON DELETE CASCADE only with a pragma,
        # and being explicit keeps the rule visible here.
        self._conn.execute(
            delete(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.app_id == app_id)
        )
        self._conn.execute(delete(apps).where(apps.c.org_id == org_id, apps.c.id == app_id))

    def full_access(self, org_id: str, *, limit: int) -> list[App]:
        """Apps granting everything (no scopes, or ``*``), newest first."""
        query = select(apps, _key_count()).where(apps.c.org_id == org_id, grants_everything(apps.c))
        rows = self._conn.execute(query.order_by(apps.c.id.desc()).limit(limit))
        return [_app(row) for row in rows]

    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]:
        query = select(apps.c.id, apps.c.scopes).where(apps.c.org_id == org_id)
        return [(row.id, tuple(row.scopes)) for row in self._conn.execute(query) if row.scopes]


def _app(row: Row[Any]) -> App:
    m = dict(row._mapping)
    m["scopes"] = tuple(m["scopes"])
    m["ratelimits"] = ratelimits_of(m["ratelimits"])
    return App(**m)
