"""SqlStore: the Store port on SQLAlchemy Core, for SQLite and PostgreSQL alike. One
repository module per feature beside this one."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import (
    Connection,
    Engine,
)
from sqlalchemy.exc import IntegrityError

from keyplane.domain.errors import Conflict
from keyplane.storage.apps import SqlAppRepository
from keyplane.storage.audit import SqlAuditRepository
from keyplane.storage.keys import SqlKeyRepository
from keyplane.storage.orgs import SqlOrgRepository
from keyplane.storage.profiles import SqlProfileRepository
from keyplane.storage.resources import SqlResourceRepository
from keyplane.storage.sessions import SqlSessionRepository
from keyplane.storage.users import SqlIdentityRepository, SqlUserRepository


class SqlStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[SqlTransaction]:
        try:
            with self.engine.begin() as conn:
                yield SqlTransaction(conn)
        except IntegrityError as exc:
            # Services check uniqueness first; this is the race between two writers.
            raise Conflict("A concurrent change conflicts with this one; retry it.") from exc

    def record_last_used(self, used: Mapping[str, datetime]) -> None:
        with self.transaction() as tx:
            tx.keys.record_last_used(used)


class SqlTransaction:
    def __init__(self, conn: Connection) -> None:
        self.orgs = SqlOrgRepository(conn)
        self.identities = SqlIdentityRepository(conn)
        self.users = SqlUserRepository(conn)
        self.keys = SqlKeyRepository(conn)
        self.apps = SqlAppRepository(conn)
        self.profiles = SqlProfileRepository(conn)
        self.resources = SqlResourceRepository(conn)
        self.audit = SqlAuditRepository(conn)
        self.sessions = SqlSessionRepository(conn)
