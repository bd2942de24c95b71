"""Databases of a test's own: a real PostgreSQL database created and dropped around it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from keyplane.storage.engine import MIGRATIONS


@contextmanager
def fresh_postgres(admin_url: str, prefix: str = "keyplane_own") -> Iterator[str]:
    """A new empty database on the server of ``admin_url``, dropped (forcibly) afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of the test's own: a SQLite file, then a fresh PostgreSQL database
    named after the test module (a module may define its own ``database_url`` instead)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'keyplane.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
    from conftest import POSTGRES_ADMIN_URL  # deferred: conftest loads this module as a plugin

    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    with fresh_postgres(POSTGRES_ADMIN_URL, f"keyplane_{module}") as url:
        yield url


def migrate_to(engine: Engine, target: str, *, down: bool = False) -> None:
    """Upgrade (or with ``down``, downgrade) ``engine``'s database to revision ``target``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        (command.downgrade if down else command.upgrade)(config, target)
