"""Migration 0008_presets on SQLite and PostgreSQL: the presets table as storage/tables.py
describes it (one name per organization), and a downgrade that drops it again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, insert, inspect
from sqlalchemy.exc import IntegrityError

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import organizations, presets

from support.databases import migrate_to

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ORG = "org_01eeeeeeeeeeeeeeeeeeeeeeee"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _preset(ident: str) -> dict[str, object]:
    return {
        "id": ident,
        "org_id": ORG,
        "name": "Model scanner CLI",
        "description": "",
        "scopes": ["models:read"],
        "created_by": "usr_01eeeeeeeeeeeeeeeeeeeeeeee",
        "created_at": NOW,
        "updated_at": NOW,
    }


def test_the_migration_creates_the_described_table_and_drops_it(engine: Engine) -> None:
    migrate_to(engine, "0008_presets")
    found = inspect(engine)
    columns = {c["name"]: c for c in found.get_columns("presets")}
    assert set(columns) == set(presets.c.keys())
    for column in presets.c:
        assert columns[column.name]["nullable"] == column.nullable, column.name
    uniques = {tuple(u["column_names"]) for u in found.get_unique_constraints("presets")}
    assert uniques == {("org_id", "name")}

    migrate_to(engine, "0007_limits", down=True)
    assert "presets" not in inspect(engine).get_table_names()
    migrate_to(engine, "0008_presets")
    assert "presets" in inspect(engine).get_table_names()


def test_a_name_is_taken_once_per_organization(engine: Engine) -> None:
    migrate_to(engine, "0008_presets")
    with engine.begin() as conn:
        conn.execute(
            insert(organizations).values(
                id=ORG, name="Org", require_explicit_scopes=False, created_at=NOW, updated_at=NOW
            )
        )
        conn.execute(insert(presets).values(**_preset("pst_01eeeeeeeeeeeeeeeeeeeeeeee")))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(insert(presets).values(**_preset("pst_01ffffffffffffffffffffffff")))
