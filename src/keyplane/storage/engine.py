"""Engines for SQLite and PostgreSQL, and running migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).parent / "migrations"

# A connection carrying this execution option runs a read-only transaction (Store.read()).
READ_ONLY: Final = "keyplane_read_only"


def normalise_url(url: str) -> str:
    """``postgresql://`` and ``postgres://`` mean psycopg 3 here."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def is_sqlite(url: str) -> bool:
    return make_url(normalise_url(url)).get_backend_name() == "sqlite"


def sqlite_path(url: str) -> Path | None:
    parsed = make_url(normalise_url(url))
    if (
        parsed.get_backend_name() != "sqlite"
        or not parsed.database
        or parsed.database == ":memory:"
    ):
        return None
    return Path(parsed.database)


def make_engine(url: str, *, synchronous: str = "FULL") -> Engine:
    """An engine whose transactions are writes unless the connection asks for READ_ONLY.

    ``synchronous`` exists for bench/durability.py, which measures what FULL costs.
    """
    url = normalise_url(url)
    if not is_sqlite(url):
        return create_engine(
            url, pool_pre_ping=True, pool_size=10, max_overflow=10, hide_parameters=True
        )
    if synchronous not in ("FULL", "NORMAL"):
        raise ValueError(f"synchronous must be FULL or NORMAL, not {synchronous!r}")
    # hide_parameters: an error's message must not carry row values (digests, metadata).
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": 30}, hide_parameters=True
    )

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below open transactions, not the sqlite3 module.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        # A deleted row's bytes are overwritten with zeros, not left in a free page: a
        # purged key's digest (services/expiry.py) must not stay readable in the file.
        cursor.execute("PRAGMA secure_delete=ON")
        # FULL: in WAL mode every commit syncs the WAL, so a commit that answered survives a
        # power loss. NORMAL syncs only at checkpoints: the last commits before a power cut
        # can vanish, among them a key whose secret the client already holds (and uses).
        # bench/durability.py measures the price on key creation.
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        # Every transaction states its mode: a pooled connection never inherits the last one's.
        if conn.get_execution_options().get(READ_ONLY):
            # Reads are deferred: they take no lock, so in WAL mode they run beside a writer
            # on their own snapshot. query_only makes SQLite refuse any write in them, which
            # is also why they can never need the upgrade that IMMEDIATE exists to avoid.
            conn.exec_driver_sql("PRAGMA query_only=1")
            conn.exec_driver_sql("BEGIN")
            return
        conn.exec_driver_sql("PRAGMA query_only=0")
        # Writes are IMMEDIATE: they take the write lock up front and wait for it on the busy
        # timeout. A deferred transaction that read first and writes later must upgrade its
        # read lock, and when another connection committed in between SQLite fails that
        # upgrade at once with SQLITE_BUSY_SNAPSHOT (the busy handler is not called, since
        # waiting cannot help a stale snapshot): the whole unit of work would have to be
        # retried by its caller. Taking the lock first makes "wait, then succeed" the rule.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


# pg_advisory_xact_lock key serialising `migrate` across processes: the int8 made of the
# ASCII bytes "kp-migr". Advisory locks are per database, so databases never share it.
MIGRATION_LOCK: Final = 0x6B702D6D696772


def migrate(engine: Engine) -> None:
    """Upgrade the schema to the newest migration (idempotent).

    Several nodes starting together on one PostgreSQL database would otherwise each run the
    same migrations at once: the losers fail on a duplicate table, or worse, on a half-done
    data migration. The first takes a transaction-level advisory lock before Alembic reads
    the schema's version; the others wait on it, and once the winner's COMMIT releases it,
    read the version it wrote (READ COMMITTED: each statement sees what committed before it)
    and find nothing to do. On SQLite the write transaction's lock (BEGIN IMMEDIATE) already
    serialises them.
    """
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
