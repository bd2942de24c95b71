"""Migration 0010_children on SQLite and PostgreSQL: ``api_keys.parent_id`` and ``depth`` as
storage/tables.py describes them, existing keys become root keys, and a downgrade that
keeps every row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, select, text

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import api_keys

from support.databases import migrate_to

NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
ORG = "org_01eeeeeeeeeeeeeeeeeeeeeeee"
KEY = "key_01eeeeeeeeeeeeeeeeeeeeeeee"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _columns(engine: Engine) -> dict[str, dict[str, object]]:
    return {c["name"]: dict(c) for c in inspect(engine).get_columns("api_keys")}


def test_existing_keys_become_root_keys_and_the_downgrade_keeps_them(engine: Engine) -> None:
    migrate_to(engine, "0009_leaked_keys")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, require_explicit_scopes, "
                "max_key_lifetime_days, created_at, updated_at) "
                "VALUES (:org, 'Acme', false, NULL, :t, :t)"
            ),
            {"org": ORG, "t": NOW},
        )
        conn.execute(
            text(
                "INSERT INTO api_keys (id, org_id, name, description, digest, digest_version, "
                "masked_key, environment, scopes, metadata, status, created_at, created_by, "
                "updated_at) VALUES (:key, :org, 'k', '', 'd', 1, 'kp_live_…abcd', 'live', "
                "'[]', '{}', 'active', :t, 'usr_x', :t)"
            ),
            {"key": KEY, "org": ORG, "t": NOW},
        )

    migrate_to(engine, "0010_children")
    columns = _columns(engine)
    assert set(columns) == set(api_keys.c.keys())
    assert columns["parent_id"]["nullable"] is True
    assert columns["depth"]["nullable"] is False
    indexes = {i["name"] for i in inspect(engine).get_indexes("api_keys")}
    assert "ix_api_keys_org_id_parent_id" in indexes
    with engine.connect() as conn:
        row = conn.execute(select(api_keys.c.parent_id, api_keys.c.depth)).one()
    assert tuple(row) == (None, 0)

    migrate_to(engine, "0009_leaked_keys", down=True)
    assert not {"parent_id", "depth"} & set(_columns(engine))
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT count(*) FROM api_keys WHERE id = :k"), {"k": KEY}) == 1
    migrate_to(engine, "0010_children")
