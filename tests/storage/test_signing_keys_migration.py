"""Migration 0011_signing_keys on SQLite and PostgreSQL: the table as storage/tables.py
describes it, at most one current key, and a downgrade that drops it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect
from sqlalchemy.exc import IntegrityError

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import signing_keys

from support.databases import migrate_to

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _row(kid: str, state: str) -> dict[str, object]:
    return {
        "kid": kid,
        "algorithm": "EdDSA",
        "private_key": "v1.sealed",
        "public_jwk": "{}",
        "state": state,
        "created_at": NOW,
    }


def test_the_migration_makes_the_table_with_one_current_key_at_most(engine: Engine) -> None:
    migrate_to(engine, "0010_children")
    migrate_to(engine, "0011_signing_keys")
    columns = {c["name"]: c for c in inspect(engine).get_columns("signing_keys")}
    assert set(columns) == set(signing_keys.c.keys())
    for name, column in columns.items():
        assert column["nullable"] == signing_keys.c[name].nullable, name
    with engine.begin() as conn:
        conn.execute(signing_keys.insert().values(_row("sig_a", "previous")))
        conn.execute(signing_keys.insert().values(_row("sig_b", "previous")))
        conn.execute(signing_keys.insert().values(_row("sig_c", "current")))
    with pytest.raises(IntegrityError), engine.begin() as conn:
        conn.execute(signing_keys.insert().values(_row("sig_d", "current")))

    migrate_to(engine, "0010_children", down=True)
    assert "signing_keys" not in inspect(engine).get_table_names()
    migrate_to(engine, "0011_signing_keys")
