"""Migration 0009_leaked_keys on SQLite and PostgreSQL: ``organizations.leaked_key_action``
as storage/tables.py describes it, "disable" for existing organizations, and a downgrade
that keeps every row."""

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


def test_existing_organizations_disable_leaked_keys_and_the_downgrade_keeps_them(
    engine: Engine,
) -> None:
    migrate_to(engine, "0008_presets")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, require_explicit_scopes, "
                "max_key_lifetime_days, created_at, updated_at) "
                "VALUES (:org, 'Acme', false, NULL, :t, :t)"
            ),
            {"org": ORG, "t": NOW},
        )

    migrate_to(engine, "0009_leaked_keys")
    columns = _columns(engine)
    assert set(columns) == set(organizations.c.keys()) - {"route_table"}  # 0012 adds it
    assert columns["leaked_key_action"]["nullable"] is False
    with engine.connect() as conn:
        query = select(organizations.c.leaked_key_action).where(organizations.c.id == ORG)
        assert conn.scalar(query) == "disable"

    migrate_to(engine, "0008_presets", down=True)
    assert "leaked_key_action" not in _columns(engine)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM organizations WHERE id = :o"), {"o": ORG})
    migrate_to(engine, "0009_leaked_keys")
