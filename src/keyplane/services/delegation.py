"""What a change to a key does to the keys it delegated to (its descendants).

Descendants are stopped by the verifier, which folds every ancestor's status and expiry
into a child's cached record and forgets that record whenever an ancestor's is forgotten
(services/verifying.py, memory.py). What is stored follows the parent too, so that the
key list, the purge and a restart agree with the verifier:

- deleting or purging a key deletes its descendants in the same transaction, deepest
  first, each with its own audit event naming the key it went with (no database cascade:
  that would delete them without a trace);
- an expiry moved earlier (a PATCH, or the end of a rotation's grace) moves every
  descendant expiring later to it, audited as that descendant's update; a later expiry
  moves no descendant (they keep their shorter lives);
- disabling a key stores nothing on its descendants: each keeps its own status, and
  verification refuses it while any ancestor is disabled. Re-enabling the key restores
  the descendants that were not disabled themselves.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from keyplane.domain.models import ApiKey
from keyplane.domain.ports import Transaction
from keyplane.services.common import Principal, record


def descendants(tx: Transaction, org_id: str, key_id: str) -> list[ApiKey]:
    """Every key below ``key_id``, level by level (children first, then theirs)."""
    found: list[ApiKey] = []
    level = [key_id]
    while level:
        below = tx.keys.children_of(org_id, level)
        found.extend(below)
        level = [key.id for key in below]
    return found


def notify_descendants(tx: Transaction, key: ApiKey) -> None:
    """Invalidation notices for every key below ``key`` (its status changed). keyplane's own
    caches need none (a record forgets with any of its ancestors, memory.py), but the event
    stream's subscribers (GET /v1/events/stream: the SDK guard) know a cached child only by
    its own id, so each descendant is named."""
    for child in descendants(tx, key.org_id, key.id):
        tx.invalidations.key(child.id, child.org_id)


def delete_descendants(
    tx: Transaction, principal: Principal, now: datetime, key: ApiKey, *, purge: bool = False
) -> list[str]:
    """Deletes the key's descendants, deepest first, each audited as ``key.delete`` (or
    ``key.purge`` when the key is purged) naming the key it went with (``with_ancestor``);
    their ids, for the caller's limiter to forget."""
    below = descendants(tx, key.org_id, key.id)
    for child in reversed(below):
        if not tx.keys.delete(key.org_id, child.id):
            continue
        # Two calls, not one with a computed action: the audit catalogue's test reads
        # every action the services write from their source.
        if purge:
            record(
                tx,
                principal,
                now,
                "key.purge",
                "key",
                child.id,
                name=child.name,
                parent_id=child.parent_id,
                with_ancestor=key.id,
            )
        else:
            record(
                tx,
                principal,
                now,
                "key.delete",
                "key",
                child.id,
                name=child.name,
                parent_id=child.parent_id,
                with_ancestor=key.id,
            )
        tx.invalidations.key(child.id, child.org_id)
    return [child.id for child in below]


def clamp_descendants(
    tx: Transaction, principal: Principal, now: datetime, key: ApiKey, expires_at: datetime
) -> None:
    """Moves every descendant expiring after ``expires_at`` (the key's new, earlier expiry)
    to it, each audited."""
    for child in descendants(tx, key.org_id, key.id):
        if child.expires_at is not None and child.expires_at <= expires_at:
            continue
        tx.keys.update(replace(child, expires_at=expires_at, updated_at=now))
        record(
            tx,
            principal,
            now,
            "key.update",
            "key",
            child.id,
            target_name=child.name,
            changes={
                "expires_at": (
                    child.expires_at.isoformat() if child.expires_at else None,
                    expires_at.isoformat(),
                )
            },
            with_ancestor=key.id,
        )
        tx.invalidations.key(child.id, child.org_id)
