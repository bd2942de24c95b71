"""Delegated keys: a key creates a narrower, shorter-lived child with its own authority.

Holding the key is the authority: the caller must be the parent key itself (a console
user, or another key of the organization, even a full-access one, cannot delegate on a
key's behalf: that is what an ordinary POST /v1/keys is for), and it needs no
``api_keys:write``. The rules of what a child may be are in domain/delegation.py; what
a change to the parent does to its children, in services/delegation.py.

The child belongs to the parent's app and environment and keeps its profile and IP
allowlist; its own scopes are always explicit (the parent's effective scopes when none
are asked for), so it never falls back to "no scopes is full access", and an app scope
change narrows parent and child alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.delegation import (
    NotTheKey,
    check_depth,
    child_expiry,
    child_scopes,
    looser_quota,
    looser_ratelimits,
)
from keyplane.domain.errors import InvalidInput, NotFound, StorageUnavailable
from keyplane.domain.ids import new_id
from keyplane.domain.limits import METADATA_MAX_BYTES
from keyplane.domain.models import ApiKey, JSONObject, Page, effective_scopes
from keyplane.domain.ports import Clock, LimitsGuard, RateLimiter, Store
from keyplane.domain.ratelimits import Quota, check_quota, check_ratelimits, merge
from keyplane.domain.tokens import KeyHasher, mask_key, mint_key
from keyplane.services.common import (
    Principal,
    check_cursor,
    check_description,
    check_json_size,
    check_limit,
    check_name,
    load_org,
    record,
)
from keyplane.services.keys import IssuedKey, KeyService, KeyView


@dataclass(frozen=True, slots=True)
class NewChild:
    name: str
    description: str = ""
    scopes: tuple[str, ...] | None = None  # None: all of the parent's effective scopes
    expires_at: datetime | None = None
    expires_in: int | None = None  # seconds
    metadata: JSONObject = field(default_factory=dict)
    # As sent; None: the parent's own (domain/delegation.py).
    ratelimits: Any = None
    quota: Any = None
    quota_given: bool = False


class ChildKeyService:
    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        clock: Clock,
        keys: KeyService,
        *,
        max_depth: int,
        limiter: RateLimiter | None = None,
        guard: LimitsGuard | None = None,
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._keys = keys
        self._max_depth = max_depth
        self._limiter = limiter
        self._guard = guard

    def create(self, principal: Principal, parent_id: str, new: NewChild) -> IssuedKey:
        now = self._clock()
        with self._store.transaction() as tx:
            org = load_org(tx, principal.org_id)
            parent = tx.keys.get(org.id, parent_id)
            if parent is None:  # another organization's key too: never confirm it exists
                raise NotFound("key", parent_id)
            if principal.actor_id != parent.id:
                raise NotTheKey(parent.id)
            depth = check_depth(parent.id, parent.depth, self._max_depth)
            app = tx.apps.get(org.id, parent.app_id) if parent.app_id else None
            # The caller's scopes are the parent's effective scopes, as verified just now.
            parent_scopes = principal.scopes
            requested = None
            if new.scopes is not None:
                requested = Catalogue(tx.resources.all(org.id)).validate("scopes", list(new.scopes))
            scopes = child_scopes(requested, parent_scopes)
            defaults = (org.ratelimits, app.ratelimits if app else ())
            ratelimits = (
                parent.ratelimits
                if new.ratelimits is None
                else check_ratelimits("ratelimits", new.ratelimits)
            )
            errors = looser_ratelimits(
                merge(*defaults, ratelimits), merge(*defaults, parent.ratelimits)
            )
            parent_quota = self._parent_quota(parent, now)
            quota = check_quota("quota", new.quota, now) if new.quota_given else parent_quota
            errors += looser_quota(quota, parent_quota)
            if errors:
                raise InvalidInput(*errors)
            if self._guard is not None and (ratelimits or quota is not None):
                self._guard.limits_added(tx, "ratelimits" if ratelimits else "quota")
            secret = mint_key(parent.environment)
            key = ApiKey(
                id=new_id("key"),
                org_id=org.id,
                name=check_name("name", new.name),
                description=check_description(new.description),
                digest=self._hasher.digest(secret),
                digest_version=self._hasher.version,
                masked_key=mask_key(secret),
                environment=parent.environment,
                scopes=tuple(scopes.sorted()),
                app_id=parent.app_id,
                profile_id=parent.profile_id,
                metadata=check_json_size("metadata", new.metadata, METADATA_MAX_BYTES),
                stored_status="active",
                created_at=now,
                created_by=principal.actor_id,
                updated_at=now,
                expires_at=child_expiry(
                    now, parent.expires_at, expires_at=new.expires_at, expires_in=new.expires_in
                ),
                ratelimits=ratelimits,
                quota=quota,
                ip_allowlist=parent.ip_allowlist,
                parent_id=parent.id,
                depth=depth,
            )
            tx.keys.insert(key)
            effective = effective_scopes(key.scopes, app)
            record(
                tx,
                principal,
                now,
                "key.create",
                "key",
                key.id,
                name=key.name,
                parent_id=parent.id,
                depth=depth,
                scopes=list(key.scopes),
                effective_scopes=effective.sorted(),
                full_access=effective.is_full_access,
                app_id=key.app_id,
                environment=key.environment,
                expires_at=key.expires_at.isoformat() if key.expires_at else None,
                ratelimits=[r.as_json() for r in key.ratelimits],
                quota=key.quota.as_json() if key.quota else None,
            )
        return IssuedKey(KeyView(key, key.status(now), effective), secret)

    def _parent_quota(self, parent: ApiKey, now: datetime) -> Quota | None:
        """The parent's quota as it stands now: the limiter's live count when it has one
        (the stored count is a batch behind), else the stored one with refills applied."""
        if parent.quota is None:
            return None
        stored = parent.quota.current(now)
        if self._limiter is None:
            return stored
        try:
            live = self._limiter.admit(parent.id, (), parent.quota, 0, now)
        except StorageUnavailable:
            return stored
        if live.quota_remaining is None:
            return stored
        return Quota(live.quota_remaining, stored.refill, stored.refilled_at)

    def page(
        self, principal: Principal, parent_id: str, *, limit: int, cursor: str | None = None
    ) -> Page[KeyView]:
        """The key's children, newest first (its grandchildren are their children)."""
        check_limit(limit)
        after = check_cursor(cursor, "key")
        with self._store.read() as tx:
            if tx.keys.get(principal.org_id, parent_id) is None:
                raise NotFound("key", parent_id)
        return self._keys.page(principal, limit=limit, cursor=after, parent_id=parent_id)
