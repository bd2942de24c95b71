"""Migration 0004 carries users over to identities and memberships, on SQLite and
PostgreSQL, keeping every ``usr_…`` id, password and pending set-password link."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from keyplane.storage.engine import make_engine, normalise_url

from support.databases import migrate_to

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
USERS = [
    # id, email, role, password_hash, setup_digest
    ("usr_01aaaaaaaaaaaaaaaaaaaaaaaa", "ada@acme.io", "owner", "$argon2id$ada", None),
    ("usr_01bbbbbbbbbbbbbbbbbbbbbbbb", "bob@acme.io", "viewer", None, "d" * 64),
]


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    if request.param == "sqlite":
        made = make_engine(f"sqlite:///{tmp_path / 'migrate.db'}")
        yield made
        made.dispose()
        return
    base: str = request.getfixturevalue("postgres_url")
    name = f"kp_identity_mig_{secrets.token_hex(4)}"
    admin = make_url(normalise_url(base)).set(drivername="postgresql")
    with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    made = make_engine(admin.set(database=name).render_as_string(hide_password=False))
    try:
        yield made
    finally:
        made.dispose()
        with psycopg.connect(admin.render_as_string(hide_password=False), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE "{name}"')


def _seed(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO organizations (id, name, require_explicit_scopes, "
                "max_key_lifetime_days, created_at, updated_at) "
                "VALUES ('org_01cccccccccccccccccccccccc', 'Acme', false, NULL, :t, :t)"
            ),
            {"t": NOW},
        )
        for user_id, email, role, password_hash, digest in USERS:
            conn.execute(
                text(
                    "INSERT INTO users (id, org_id, email, name, role, password_hash, "
                    "created_at, setup_digest, setup_expires_at) VALUES (:id, "
                    "'org_01cccccccccccccccccccccccc', :email, :email, :role, :hash, :t, "
                    ":digest, :expires)"
                ),
                {
                    "id": user_id,
                    "email": email,
                    "role": role,
                    "hash": password_hash,
                    "t": NOW,
                    "digest": digest,
                    "expires": NOW + timedelta(days=3) if digest else None,
                },
            )


def test_users_become_identities_with_one_membership_each_and_back(engine: Engine) -> None:
    migrate_to(engine, "0003")
    _seed(engine)

    migrate_to(engine, "head")

    with engine.connect() as conn:
        members = conn.execute(
            text(
                "SELECT m.id, i.email, m.role, i.password_hash, m.setup_digest, m.pending "
                "FROM memberships m JOIN identities i ON i.id = m.identity_id ORDER BY m.id"
            )
        ).all()
        identity_ids = conn.execute(text("SELECT id FROM identities ORDER BY id")).scalars()
        assert list(identity_ids) == [f"idn_{u[0][4:]}" for u in USERS]
    assert [tuple(row[:5]) for row in members] == USERS
    assert [bool(row.pending) for row in members] == [False, True]

    migrate_to(engine, "0003", down=True)

    with engine.connect() as conn:
        back = conn.execute(
            text("SELECT id, email, role, password_hash, setup_digest FROM users ORDER BY id")
        ).all()
    assert [tuple(row) for row in back] == USERS
