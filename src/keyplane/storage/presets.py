"""Permission presets."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, insert, select, update

from keyplane.domain.models import Preset
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import presets


class SqlPresetRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, preset_id: str) -> Preset | None:
        query = select(presets).where(presets.c.org_id == org_id, presets.c.id == preset_id)
        row = self._conn.execute(query).first()
        return _preset(row) if row else None

    def find_by_name(self, org_id: str, name: str) -> Preset | None:
        query = select(presets).where(presets.c.org_id == org_id, presets.c.name == name)
        row = self._conn.execute(query).first()
        return _preset(row) if row else None

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Preset]:
        query = select(presets).where(presets.c.org_id == org_id)
        if after is not None:
            query = query.where(presets.c.id < after)
        rows = self._conn.execute(query.order_by(presets.c.id.desc()).limit(limit))
        return [_preset(row) for row in rows]

    def all(self, org_id: str, *, limit: int) -> list[Preset]:
        """By name, for a form's select."""
        query = select(presets).where(presets.c.org_id == org_id)
        rows = self._conn.execute(query.order_by(presets.c.name).limit(limit))
        return [_preset(row) for row in rows]

    def insert(self, preset: Preset) -> None:
        values = _fields(preset)
        values["scopes"] = list(preset.scopes)
        self._conn.execute(insert(presets).values(**values))

    def update(self, preset: Preset) -> None:
        values = {
            "name": preset.name,
            "description": preset.description,
            "scopes": list(preset.scopes),
            "updated_at": preset.updated_at,
        }
        query = update(presets).where(presets.c.org_id == preset.org_id, presets.c.id == preset.id)
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, preset_id: str) -> None:
        self._conn.execute(
            delete(presets).where(presets.c.org_id == org_id, presets.c.id == preset_id)
        )

    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]:
        query = select(presets.c.id, presets.c.scopes).where(presets.c.org_id == org_id)
        return [(row.id, tuple(row.scopes)) for row in self._conn.execute(query)]


def _preset(row: Row[Any]) -> Preset:
    m = dict(row._mapping)
    m["scopes"] = tuple(m["scopes"])
    return Preset(**m)
