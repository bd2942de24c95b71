"""Rotating a key: a successor issued now, the old key kept for a grace period.

The successor copies what the old key was for (app, own scopes, profile, metadata,
environment, name and description) and keeps its lifetime policy: a key that lived 90 days
is replaced by one that lives 90 days from now, never beyond the organization's maximum.
The old key keeps verifying until its grace ends (its ``expires_at`` moves to then), and
from the rotation on counts the verifications it answers, so the team sees who still uses
it. A key is rotated once: a second rotation, racing or not, is a Conflict naming the
successor (the store's conditional update picks one winner).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from keyplane.domain.errors import Conflict, InvalidInput, NotFound
from keyplane.domain.limits import EXPIRES_IN_DAYS_MAX
from keyplane.domain.models import ApiKey, Organization
from keyplane.domain.ports import Clock, Store, Transaction
from keyplane.services.common import Principal, load_org, record
from keyplane.services.delegation import clamp_descendants
from keyplane.services.keys import IssuedKey, KeyService, NewKey

GRACE_DEFAULT_SECONDS: Final = 86_400
GRACE_MAX_SECONDS: Final = 30 * 86_400


@dataclass(frozen=True, slots=True)
class Rotated:
    """The successor, shown once, and when the old key stops verifying."""

    issued: IssuedKey
    old_key_id: str
    grace_ends_at: datetime


class RotationService:
    def __init__(self, store: Store, keys: KeyService, clock: Clock) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock

    def rotate(
        self, principal: Principal, key_id: str, grace_period_seconds: int = GRACE_DEFAULT_SECONDS
    ) -> Rotated:
        if not 0 <= grace_period_seconds <= GRACE_MAX_SECONDS:
            raise InvalidInput.field(
                "grace_period_seconds", f"must be between 0 and {GRACE_MAX_SECONDS}"
            )
        now = self._clock()
        with self._store.transaction() as tx:
            org = load_org(tx, principal.org_id)
            old = _key(tx, org.id, key_id)
            if old.rotated_to is not None:
                raise _already_rotated(old.id, old.rotated_to)
            if old.parent_id is not None:
                # A successor would need the parent's authority, which only the parent key
                # holds (POST /v1/keys/{parent}/children); a delegated key is short-lived.
                raise Conflict(
                    f"The key {old.id!r} is delegated (a child of {old.parent_id!r}) and is "
                    "not rotated: have its parent create another child.",
                    field="key_id",
                )
            if old.status(now) == "expired":
                raise Conflict(
                    f"The key {old.id!r} has expired and cannot be rotated: create a new key.",
                    field="key_id",
                )
            # Issued through the same path as any key: the escalation check (the caller
            # must hold the scopes it hands on), the org's policies and the key.create event.
            issued = self._keys.issue_in(
                tx,
                principal,
                org,
                NewKey(
                    name=old.name,
                    description=old.description,
                    scopes=old.scopes,
                    app_id=old.app_id,
                    expires_at=successor_expiry(org, old, now),
                    profile_id=old.profile_id,
                    metadata=old.metadata,
                    environment=old.environment,
                    # Limits are policy: the successor keeps them. Its quota starts from
                    # the old key's stored count (a second or so behind its live count).
                    ratelimits=[r.as_json() for r in old.ratelimits],
                    quota=old.quota.as_json() if old.quota else None,
                    ip_allowlist=list(old.ip_allowlist),
                ),
                rotated_from=old.id,
            )
            new_id = issued.view.key.id
            grace_ends_at = now + timedelta(seconds=grace_period_seconds)
            if old.expires_at is not None:
                grace_ends_at = min(grace_ends_at, old.expires_at)
            if not tx.keys.mark_rotated(
                org.id, old.id, rotated_to=new_id, at=now, expires_at=grace_ends_at
            ):
                # A concurrent rotation committed first; this one rolls back whole.
                winner = _key(tx, org.id, old.id).rotated_to
                raise _already_rotated(old.id, winner or "another key")
            record(
                tx,
                principal,
                now,
                "key.rotate",
                "key",
                old.id,
                name=old.name,
                rotated_to=new_id,
                grace_period_seconds=grace_period_seconds,
                grace_ends_at=grace_ends_at.isoformat(),
            )
            # A seam for the key.rotated webhook: its outbox row belongs here, in this unit
            # of work, beside the audit event.
            # The old key's cached record still holds its former expiry.
            tx.invalidations.key(old.id, org.id)
            # Its children end with its grace (services/delegation.py).
            clamp_descendants(tx, principal, now, old, grace_ends_at)
        return Rotated(issued, old.id, grace_ends_at)


def successor_expiry(org: Organization, old: ApiKey, now: datetime) -> datetime | None:
    """The old key's lifetime (creation to expiry) from now, within the org's maximum.

    A key without expiry gets none, unless the org now requires one: then the maximum.
    """
    limits = [now + timedelta(days=EXPIRES_IN_DAYS_MAX)]
    if org.max_key_lifetime_days is not None:
        limits.append(now + timedelta(days=org.max_key_lifetime_days))
    if old.expires_at is None:
        return min(limits) if org.max_key_lifetime_days is not None else None
    return min(now + (old.expires_at - old.created_at), *limits)


def _already_rotated(key_id: str, newer: str) -> Conflict:
    return Conflict(
        f"The key {key_id!r} was already rotated to {newer!r}; a key is rotated only once. "
        f"Rotate {newer!r} instead.",
        field="key_id",
    )


def _key(tx: Transaction, org_id: str, key_id: str) -> ApiKey:
    key = tx.keys.get(org_id, key_id)
    if key is None:
        raise NotFound("key", key_id)
    return key
