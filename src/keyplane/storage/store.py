"""SqlStore: the Store port on SQLAlchemy Core, for SQLite and PostgreSQL alike. One
repository module per feature beside this one.

Database failures are translated here, in one place: a uniqueness (or foreign key) race
between two writers is a Conflict, a write inside ``read()`` is a bug (WriteInReadOnly), and
everything else the database refuses is StorageUnavailable (the API answers 503).
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Final

from sqlalchemy import (
    Connection,
    Engine,
)
from sqlalchemy.exc import DBAPIError, IntegrityError

from keyplane.domain.errors import Conflict, StorageUnavailable
from keyplane.domain.ports import QuotaSpend
from keyplane.domain.ratelimits import Quota
from keyplane.storage.apps import SqlAppRepository
from keyplane.storage.audit import SqlAuditRepository
from keyplane.storage.engine import READ_ONLY
from keyplane.storage.invalidations import SqlInvalidations
from keyplane.storage.keys import SqlKeyRepository
from keyplane.storage.notices import SqlNoticeRepository
from keyplane.storage.orgs import SqlOrgRepository
from keyplane.storage.presets import SqlPresetRepository
from keyplane.storage.profiles import SqlProfileRepository
from keyplane.storage.resources import SqlResourceRepository
from keyplane.storage.sessions import SqlSessionRepository
from keyplane.storage.signing import SqlSigningKeyRepository
from keyplane.storage.users import SqlIdentityRepository, SqlUserRepository
from keyplane.storage.webhooks import SqlWebhookRepository

log = logging.getLogger(__name__)

# A race between two writers: SQLite's extended result codes, PostgreSQL's SQLSTATEs.
_SQLITE_CONFLICTS: Final = frozenset(
    (
        sqlite3.SQLITE_CONSTRAINT_UNIQUE,
        sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY,
        sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY,
    )
)
_POSTGRES_CONFLICTS: Final = frozenset(("23505", "23503"))  # unique, foreign key
_SQLITE_READONLY: Final = 8
_POSTGRES_READ_ONLY_TRANSACTION: Final = "25006"


class WriteInReadOnly(RuntimeError):
    """A write inside ``Store.read()``: a bug in the caller, refused by the database."""


class SqlStore:
    """``committed`` receives each committed unit of work's invalidation notices (app.py:
    this process's KeyCache); on PostgreSQL they were also NOTIFYed inside it."""

    def __init__(
        self, engine: Engine, committed: Callable[[Sequence[str]], None] | None = None
    ) -> None:
        self.engine = engine
        self._committed = committed
        self._notify = engine.dialect.name == "postgresql"

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        try:
            with self.engine.begin() as conn:
                tx = SqlTransaction(conn, notify=self._notify)
                yield tx
        except DBAPIError as exc:
            raise _translate(exc, read_only=False) from exc
        # Only reached once COMMIT succeeded. This process's cache is told here rather than
        # by its own listener, so the answer to the change already reflects it on this node.
        notices = tx.invalidations.notices
        if notices and self._committed is not None:
            self._committed(notices)

    @contextmanager
    def read(self) -> Iterator[SqlTransaction]:
        try:
            with self.engine.connect() as conn:
                # SQLite: a deferred transaction under query_only (see engine.py);
                # PostgreSQL: BEGIN READ ONLY (psycopg sets it; reset when pooled again).
                conn.execution_options(**{READ_ONLY: True, "postgresql_readonly": True})
                with conn.begin():
                    yield SqlTransaction(conn)
        except DBAPIError as exc:
            raise _translate(exc, read_only=True) from exc

    def record_last_used(self, used: Mapping[str, datetime], counts: Mapping[str, int]) -> None:
        with self.transaction() as tx:
            tx.keys.record_last_used(used, counts)

    def record_quota(self, spent: Mapping[str, QuotaSpend]) -> None:
        with self.transaction() as tx:
            tx.keys.record_quota(spent)

    def stored_quota(self, key_id: str) -> Quota | None:
        with self.read() as tx:
            return tx.keys.quota(key_id)

    def scrub(self) -> None:
        """On SQLite, after a purge: copy the WAL into the database file and truncate it.

        ``secure_delete`` zeroes a deleted row in the page it writes, but in WAL mode the
        earlier versions of that page (with the row) stay in the ``-wal`` file until it is
        overwritten, possibly much later. A checkpoint that cannot finish (a reader holds an
        old snapshot) leaves the rest to the next purge. Nothing to do on PostgreSQL.
        """
        if self.engine.dialect.name != "sqlite":
            return
        raw = self.engine.raw_connection()
        try:
            # Autocommit (engine.py): a checkpoint cannot run inside a transaction.
            raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        finally:
            raw.close()


def _translate(exc: DBAPIError, *, read_only: bool) -> Exception:
    orig = exc.orig
    sqlite_code = getattr(orig, "sqlite_errorcode", None)
    sqlstate = getattr(orig, "sqlstate", None)
    if isinstance(exc, IntegrityError) and (
        sqlite_code in _SQLITE_CONFLICTS or sqlstate in _POSTGRES_CONFLICTS
    ):
        # Services check uniqueness first; this is the race between two writers.
        return Conflict("A concurrent change conflicts with this one; retry it.")
    # Only inside read(): in a write transaction the same codes mean a read-only file or a
    # PostgreSQL standby, which is the database being unavailable for writes.
    refused = sqlite_code == _SQLITE_READONLY or sqlstate == _POSTGRES_READ_ONLY_TRANSACTION
    if read_only and refused:
        return WriteInReadOnly("a write inside Store.read(): use Store.transaction()")
    # The statement is logged (hide_parameters keeps row values out), the client learns only
    # that nothing was changed.
    log.error("the database refused a unit of work; it was rolled back", exc_info=exc)
    return StorageUnavailable()


class SqlTransaction:
    def __init__(self, conn: Connection, *, notify: bool = False) -> None:
        # For what must run on the unit of work's own connection (storage/limitsguard.py).
        self.connection = conn
        self.orgs = SqlOrgRepository(conn)
        self.identities = SqlIdentityRepository(conn)
        self.users = SqlUserRepository(conn)
        self.keys = SqlKeyRepository(conn)
        self.apps = SqlAppRepository(conn)
        self.profiles = SqlProfileRepository(conn)
        self.presets = SqlPresetRepository(conn)
        self.resources = SqlResourceRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.sessions = SqlSessionRepository(conn)
        self.notices = SqlNoticeRepository(conn)
        self.webhooks = SqlWebhookRepository(conn)
        self.signing_keys = SqlSigningKeyRepository(conn)
        self.invalidations = SqlInvalidations(conn, notify=notify)
