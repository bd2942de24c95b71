"""The audit log: reading it and checking its hash chains."""

from __future__ import annotations

from contextlib import closing

from keyplane.domain.audit import ChainBreak, ChainChecker
from keyplane.domain.ports import Store


class AuditService:
    def __init__(self, store: Store) -> None:
        self._store = store

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
