"""Migration 0006_webhooks creates the webhook tables as storage/tables.py describes them, on
SQLite and PostgreSQL, with no column that could hold a secret; and drops them again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, inspect

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import webhook_attempts, webhook_messages, webhooks

from support.databases import migrate_to

TABLES = (webhooks, webhook_messages, webhook_attempts)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def test_the_migration_creates_the_described_tables_and_drops_them(engine: Engine) -> None:
    migrate_to(engine, "0006_webhooks")
    found = inspect(engine)
    for table in TABLES:
        columns = {c["name"]: c for c in found.get_columns(table.name)}
        assert set(columns) == set(table.c.keys()), table.name
        for column in table.c:
            assert columns[column.name]["nullable"] == column.nullable, column.name
        indexes = {tuple(i["column_names"]) for i in found.get_indexes(table.name)}
        assert indexes == {tuple(c.name for c in i.columns) for i in table.indexes}, table.name
    # A number and a time, never a secret (KeyHasher.webhook_secret derives it).
    assert {c.name for c in webhooks.c if "secret" in c.name} == {
        "secret_generation",
        "previous_secret_until",
    }

    migrate_to(engine, "0006_expiry", down=True)
    assert not {t.name for t in TABLES} & set(inspect(engine).get_table_names())
    migrate_to(engine, "0006_webhooks")
    assert {t.name for t in TABLES} <= set(inspect(engine).get_table_names())
