"""Migration 0012_route_table on SQLite and PostgreSQL: the column as storage/tables.py
describes it, existing organizations with an empty table (deny by default), and a
downgrade that keeps every row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, select, text

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import organizations

from support.databases import migrate_to

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ORG = "org_01ffffffffffffffffffffffff"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _columns(engine: Engine) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in inspect(engine).get_columns("organizations")}


def test_the_migration_adds_an_empty_route_table_and_the_downgrade_keeps_the_rows(
    engine: Engine,
) -> None:
    migrate_to(engine, "0011_signing_keys")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, require_explicit_scopes, "
                "max_key_lifetime_days, created_at, updated_at) "
                "VALUES (:org, 'Acme', false, NULL, :t, :t)"
            ),
            {"org": ORG, "t": NOW},
        )

    migrate_to(engine, "0012_route_table")
    columns = _columns(engine)
    assert set(columns) == set(organizations.c.keys())
    assert columns["route_table"]["nullable"] is False
    with engine.connect() as conn:
        query = select(organizations.c.route_table).where(organizations.c.id == ORG)
        assert conn.scalar(query) == []

    migrate_to(engine, "0011_signing_keys", down=True)
    assert "route_table" not in _columns(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM organizations WHERE id = :o"), {"o": ORG})
    migrate_to(engine, "0012_route_table")
