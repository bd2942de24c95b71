"""Migration 0007_limits on SQLite and PostgreSQL: the limit columns as storage/tables.py
describes them, existing rows without limits, and a downgrade that keeps every row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, select, text

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import api_keys, apps, organizations

from support.databases import migrate_to

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ORG = "org_01eeeeeeeeeeeeeeeeeeeeeeee"
NEW = {
    "organizations": {"ratelimits"},
    "apps": {"ratelimits"},
    "api_keys": {
        "ratelimits",
        "ip_allowlist",
        "quota_remaining",
        "quota_refill",
        "quota_refilled_at",
    },
}
# Columns later migrations add (so not there at 0007_limits; their own migration tests check
# them).
LATER = {
    "organizations": {"leaked_key_action", "route_table"},
    "api_keys": {"parent_id", "depth"},
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _columns(engine: Engine, table: str) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in inspect(engine).get_columns(table)}


def test_the_migration_adds_the_limit_columns_and_the_downgrade_keeps_the_rows(
    engine: Engine,
) -> None:
    migrate_to(engine, "0006_webhooks")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, require_explicit_scopes, "
                "max_key_lifetime_days, created_at, updated_at) "
                "VALUES (:org, 'Acme', false, NULL, :t, :t)"
            ),
            {"org": ORG, "t": NOW},
        )

    migrate_to(engine, "0007_limits")
    for table in (organizations, apps, api_keys):
        columns = _columns(engine, table.name)
        assert set(columns) == set(table.c.keys()) - LATER.get(table.name, set()), table.name
        for name in NEW[table.name]:
            assert columns[name]["nullable"] == table.c[name].nullable, name
    with engine.connect() as conn:
        query = select(organizations.c.ratelimits).where(organizations.c.id == ORG)
        assert conn.scalar(query) == []

    migrate_to(engine, "0006_webhooks", down=True)
    for table, names in NEW.items():
        assert not names & set(_columns(engine, table)), table
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM organizations WHERE id = :o"), {"o": ORG})
    migrate_to(engine, "0007_limits")
