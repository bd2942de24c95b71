"""Migration 0006_expiry on SQLite and PostgreSQL: existing organizations get the lifecycle
defaults (retention 0, warnings [7, 1], no rotation period); the downgrade takes the columns
and the notices table away and keeps every organization and what belongs to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, inspect, select, text

from keyplane.storage.engine import make_engine
from keyplane.storage.tables import organizations

from support.databases import migrate_to

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
ORG = "org_01cccccccccccccccccccccccc"
KEY = "key_01dddddddddddddddddddddddd"
COLUMNS = {"expired_key_retention_days", "expiry_warning_days", "rotation_period_days"}


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


def test_existing_orgs_get_the_defaults_and_the_downgrade_keeps_their_keys(
    engine: Engine,
) -> None:
    migrate_to(engine, "0005_audit")
    _seed(engine)

    migrate_to(engine, "0006_expiry")

    with engine.connect() as conn:
        # The columns this revision made (later ones add more to the table).
        c = organizations.c
        query = select(c.expired_key_retention_days, c.expiry_warning_days, c.rotation_period_days)
        row = conn.execute(query.where(c.id == ORG)).one()
    assert (row.expired_key_retention_days, row.expiry_warning_days, row.rotation_period_days) == (
        0,
        [7, 1],
        None,
    )
    assert "key_notices" in inspect(engine).get_table_names()

    migrate_to(engine, "0005_audit", down=True)

    columns = {c["name"] for c in inspect(engine).get_columns("organizations")}
    assert not columns & COLUMNS
    assert "key_notices" not in inspect(engine).get_table_names()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT id FROM api_keys")).scalars().all() == [KEY]
