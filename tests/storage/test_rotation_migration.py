"""Migration 0005_rotation adds the rotation columns to keys that already exist, on SQLite
and PostgreSQL: no key rotated, no verification counted; and takes them away again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, text

from keyplane.storage.engine import make_engine

from support.databases import migrate_to

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ORG = "org_01cccccccccccccccccccccccc"
KEY = "key_01dddddddddddddddddddddddd"
COLUMNS = {"rotated_from", "rotated_to", "rotated_at", "uses_since_rotation"}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = make_engine(database_url)
    yield made
    made.dispose()


def _seed(engine: Engine) -> None:
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
                "masked_key, environment, scopes, app_id, profile_id, metadata, status, "
                "created_at, created_by, updated_at, expires_at, last_used_at) VALUES "
                "(:key, :org, 'old', '', :digest, 1, 'kp_live_…abcd', 'live', "
                "CAST(:empty_list AS JSON), NULL, NULL, CAST(:empty_object AS JSON), "
                "'active', :t, 'usr_01aaaaaaaaaaaaaaaaaaaaaaaa', :t, NULL, NULL)"
            ),
            {
                "key": KEY,
                "org": ORG,
                "digest": "e" * 64,
                "empty_list": "[]",
                "empty_object": "{}",
                "t": NOW,
            },
        )


def test_existing_keys_are_unrotated_with_no_count_and_the_columns_go_on_downgrade(
    engine: Engine,
) -> None:
    migrate_to(engine, "0004")
    _seed(engine)

    migrate_to(engine, "0005_rotation")

    with engine.connect() as conn:
        row = conn.execute(
            text(
                "SELECT rotated_from, rotated_to, rotated_at, uses_since_rotation "
                "FROM api_keys WHERE id = :key"
            ),
            {"key": KEY},
        ).one()
    assert tuple(row) == (None, None, None, 0)

    migrate_to(engine, "0004", down=True)

    columns = {c["name"] for c in inspect(engine).get_columns("api_keys")}
    assert not columns & COLUMNS
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM api_keys")).scalars().all() == [KEY]
