"""The audit log: reading it and checking its hash chains."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Final

from keyplane.domain.audit import AuditQuery, ChainBreak, ChainChecker
from keyplane.domain.models import AuditEvent, Page
from keyplane.domain.ports import Store
from keyplane.services.common import Principal, check_cursor, check_limit, paginate

EXPORT_BATCH: Final = 1000


class AuditService:
    def __init__(self, store: Store) -> None:
        self._store = store

    def page(
        self, principal: Principal, query: AuditQuery, *, limit: int, cursor: str | None
    ) -> Page[AuditEvent]:
        """The organization's events matching ``query``, newest first."""
        principal.require("audit:read")
        query, after = query.checked(), check_cursor(cursor, "evt")
        check_limit(limit)
        with self._store.read() as tx:
            return paginate(
                lambda n: tx.audit.page(principal.org_id, query, limit=n, after=after),
                limit,
                lambda e: e.id,
            )

    def export(self, principal: Principal, query: AuditQuery) -> Iterator[AuditEvent]:
        """Every matching event, newest first, read in pages of EXPORT_BATCH.

        Checks the caller and the filters before the first event is asked for (so a bad
        filter is a 422, not a broken download). Each page is its own short read: a slow
        download never holds a transaction (or a pooled connection) open, and events written
        meanwhile sort above the first page, so they neither appear nor shift the pages.
        """
        principal.require("audit:read")
        query = query.checked()
        return self._pages(principal.org_id, query)

    def _pages(self, org_id: str, query: AuditQuery) -> Iterator[AuditEvent]:
        after: str | None = None
        while True:
            with self._store.read() as tx:
                batch = tx.audit.page(org_id, query, limit=EXPORT_BATCH, after=after)
            yield from batch
            if len(batch) < EXPORT_BATCH:
                return
            after = batch[-1].id

    def verify(self, org_id: str | None = None) -> list[ChainBreak]:
        """Every organization's chain (or one), checked event by event, streamed from the
        database; answers the first break of each broken chain, none when all hold."""
        breaks: list[ChainBreak] = []
        with self._store.read() as tx:
            for org, (head_seq, head_hash) in sorted(tx.audit.heads(org_id).items()):
                checker = ChainChecker(org, head_seq, head_hash)
                with closing(tx.audit.chain(org)) as events:
                    found = next(filter(None, map(checker.feed, events)), None)
                found = found or checker.finish()
                if found is not None:
                    breaks.append(found)
        return breaks
