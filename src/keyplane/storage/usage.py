"""Usage counts at rest: batched upserts, retention, series and top keys."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, delete, desc, func, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import DBAPIError

from keyplane.domain.errors import StorageUnavailable
from keyplane.domain.usage import (
    GRANULARITIES,
    KeyUsage,
    Retention,
    UsagePoint,
    UsageRange,
    UsageTally,
    bucket_start,
)
from keyplane.storage.engine import READ_ONLY
from keyplane.storage.tables import usage_counts

_NO_KEY = ""  # the key_id of NOT_FOUND answers about no key (tables.py says why)
_PRIMARY_KEY = ("org_id", "granularity", "key_id", "bucket_start", "outcome")


class SqlUsageRepository:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[Connection]:
        try:
            if write:
                with self._engine.begin() as conn:
                    yield conn
            else:
                # As Store.read(): on SQLite a deferred read beside any writer (a plain
                # transaction here would be BEGIN IMMEDIATE and wait for the write lock).
                with self._engine.connect() as conn:
                    conn.execution_options(**{READ_ONLY: True, "postgresql_readonly": True})
                    with conn.begin():
                        yield conn
        except DBAPIError as exc:
            raise StorageUnavailable() from exc

    def add(self, tallies: Sequence[UsageTally]) -> None:
        rows: dict[tuple[Any, ...], dict[str, Any]] = {}
        for tally in tallies:
            for granularity in GRANULARITIES:
                row = {
                    "org_id": tally.org_id,
                    "granularity": granularity,
                    "key_id": tally.key_id or _NO_KEY,
                    "bucket_start": bucket_start(tally.minute, granularity),
                    "outcome": tally.outcome,
                }
                ident = tuple(row.values())
                if ident in rows:
                    rows[ident]["count"] += tally.count
                else:
                    rows[ident] = {**row, "app_id": tally.app_id, "count": tally.count}
        if not rows:
            return
        with self._connect(write=True) as conn:
            insert = postgresql_insert if conn.dialect.name == "postgresql" else sqlite_insert
            statement = insert(usage_counts)
            statement = statement.on_conflict_do_update(
                index_elements=list(_PRIMARY_KEY),
                set_={"count": usage_counts.c.count + statement.excluded["count"]},
            )
            # In primary-key order: two nodes adding to the same rows lock them in the same
            # order on PostgreSQL, so their batches wait for each other instead of deadlocking.
            conn.execute(statement, [rows[ident] for ident in sorted(rows)])

    def apply_retention(self, retention: Retention, now: datetime) -> int:
        deleted = 0
        with self._connect(write=True) as conn:
            for granularity, cutoff in retention.cutoffs(now).items():
                query = delete(usage_counts).where(
                    usage_counts.c.granularity == granularity,
                    usage_counts.c.bucket_start < cutoff,
                )
                deleted += conn.execute(query).rowcount
        return deleted

    def series(
        self, org_id: str, span: UsageRange, *, key_id: str | None, app_id: str | None
    ) -> list[UsagePoint]:
        c = usage_counts.c
        query = (
            select(c.bucket_start, c.outcome, func.sum(c.count).label("n"))
            .where(
                c.org_id == org_id,
                c.granularity == span.granularity,
                c.bucket_start >= span.start,
                c.bucket_start < span.end,
            )
            .group_by(c.bucket_start, c.outcome)
            .order_by(c.bucket_start, c.outcome)
        )
        if key_id is not None:
            query = query.where(c.key_id == key_id)
        if app_id is not None:
            query = query.where(c.app_id == app_id)
        points: dict[datetime, dict[str, int]] = defaultdict(dict)
        with self._connect(write=False) as conn:
            for row in conn.execute(query):
                points[row.bucket_start][row.outcome] = int(row.n)
        return [UsagePoint(start, counts) for start, counts in points.items()]

    def top_keys(self, org_id: str, span: UsageRange, limit: int) -> list[KeyUsage]:
        c = usage_counts.c
        where = (
            c.org_id == org_id,
            c.granularity == span.granularity,
            c.bucket_start >= span.start,
            c.bucket_start < span.end,
            c.key_id != _NO_KEY,
        )
        total = func.sum(c.count).label("total")
        top = (
            select(c.key_id, total)
            .where(*where)
            .group_by(c.key_id)
            .order_by(desc(total), c.key_id)
            .limit(limit)
        )
        with self._connect(write=False) as conn:
            ranked = [(row.key_id, int(row.total)) for row in conn.execute(top)]
            if not ranked:
                return []
            detail = (
                select(c.key_id, func.max(c.app_id).label("app_id"), c.outcome, func.sum(c.count))
                .where(*where, c.key_id.in_([key_id for key_id, _ in ranked]))
                .group_by(c.key_id, c.outcome)
            )
            counts: dict[str, dict[str, int]] = defaultdict(dict)
            apps: dict[str, str | None] = {}
            for key_id, app, outcome, n in conn.execute(detail):
                counts[key_id][outcome] = int(n)
                apps[key_id] = app
        return [KeyUsage(key_id, apps.get(key_id), n, counts[key_id]) for key_id, n in ranked]
