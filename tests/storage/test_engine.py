"""Engines and migrations: several nodes starting together on one fresh PostgreSQL database
migrate it once, and every one of them starts."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import Engine, event, inspect

from keyplane.storage.engine import make_engine, migrate

from conftest import POSTGRES_ADMIN_URL
from support.databases import fresh_postgres

NODES = 4


def _count_creates(engine: Engine, counts: list[int]) -> None:
    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("CREATE TABLE"):
            counts.append(1)


def _tables_created_by_one_migration() -> int:
    counts: list[int] = []
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_migrate_once") as url:
        engine = make_engine(url)
        _count_creates(engine, counts)
        migrate(engine)
        engine.dispose()
    return len(counts)


@pytest.mark.postgres
def test_nodes_migrating_a_fresh_database_at_once_all_succeed_and_migrate_once(
    postgres_url: str,
) -> None:
    expected = _tables_created_by_one_migration()
    assert expected > 5
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_migrate_race") as url:
        engines = [make_engine(url) for _ in range(NODES)]
        counts: list[int] = []
        for engine in engines:
            _count_creates(engine, counts)
        start = threading.Barrier(NODES)
        failures: list[BaseException] = []

        def node(engine: Engine) -> None:
            start.wait()
            try:
                migrate(engine)
            except BaseException as exc:  # reported below, with every node's outcome
                failures.append(exc)

        threads = [threading.Thread(target=node, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        try:
            assert failures == []
            # Each table was created by one node only: the others waited, then found the
            # schema at head.
            assert len(counts) == expected
            assert "api_keys" in inspect(engines[0]).get_table_names()
        finally:
            for engine in engines:
                engine.dispose()


def test_migrating_twice_changes_nothing(tmp_path: Any) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'k.db'}")
    migrate(engine)
    counts: list[int] = []
    _count_creates(engine, counts)
    migrate(engine)
    engine.dispose()
    assert counts == []
