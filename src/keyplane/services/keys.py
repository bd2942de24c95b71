"""Issuing and managing keys: create, list, read, change, delete."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.delegation import looser_quota, looser_ratelimits
from keyplane.domain.errors import FieldError, InvalidInput, NotFound, StorageUnavailable
from keyplane.domain.ids import new_id
from keyplane.domain.limits import (
    EXPIRES_IN_DAYS_MAX,
    EXPIRES_IN_DAYS_MIN,
    METADATA_MAX_BYTES,
    NAME_MAX,
)
from keyplane.domain.models import (
    ApiKey,
    App,
    JSONObject,
    KeyStatus,
    Organization,
    Page,
    Preset,
    StoredStatus,
    effective_scopes,
)
from keyplane.domain.ports import Clock, LimitsGuard, RateLimiter, Store, Transaction
from keyplane.domain.ratelimits import (
    QUOTA_MAX,
    Admission,
    Quota,
    RateLimit,
    check_allowlist,
    check_quota,
    check_ratelimits,
    merge,
    ratelimits_json,
)
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.tokens import Environment, KeyHasher, mask_key, mint_key
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_description,
    check_json_size,
    check_limit,
    check_name,
    load_org,
    paginate,
    record,
)
from keyplane.services.delegation import (
    clamp_descendants,
    delete_descendants,
    notify_descendants,
)
from keyplane.services.presets import preset_details, preset_instead_of_scopes


@dataclass(frozen=True, slots=True)
class NewKey:
    name: str
    description: str = ""
    scopes: tuple[str, ...] = ()
    app_id: str | None = None
    expires_at: datetime | None = None
    expires_in_days: int | None = None
    profile_id: str | None = None
    metadata: JSONObject = field(default_factory=dict)
    environment: Environment = "live"
    # Limits, as sent (validated here so every message names its field): a list of
    # {name, limit, period_seconds}, {remaining, refill} or None, a list of addresses/CIDRs.
    ratelimits: Any = ()
    quota: Any = None
    ip_allowlist: Any = ()
    # A preset's name or id, instead of scopes: the key gets a copy of its scopes
    # (services/presets.py), and the audit event names it.
    preset: str | None = None


@dataclass(frozen=True, slots=True)
class KeyChanges:
    status: StoredStatus | _Unset = UNSET
    profile_id: str | _Unset | None = UNSET
    description: str | _Unset = UNSET
    metadata: JSONObject | _Unset = UNSET
    expires_at: datetime | _Unset | None = UNSET
    ratelimits: Any = UNSET
    # {remaining, refill} replaces the quota (a missing refill keeps the current one),
    # {add: n} adds to what remains, None removes it.
    quota: Any = UNSET
    ip_allowlist: Any = UNSET


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key as shown after creation: its record, derived status and effective scopes.

    ``limits``: the key's effective rate limits and live quota as the RateLimiter has them
    now (a check that spends nothing), on single-key reads only; None in lists, whose quota
    counts are the stored ones (written in batches, a second or so behind).
    """

    key: ApiKey
    status: KeyStatus
    effective: ScopeSet
    limits: Admission | None = None
    app_limits: tuple[RateLimit, ...] = ()


@dataclass(frozen=True, slots=True)
class FullAccess:
    """What in an organization still grants everything: apps without scopes, and unexpired
    keys whose effective scopes are everything. ``more`` when a list was cut at its limit."""

    apps: list[App]
    keys: list[KeyView]
    more_apps: bool
    more_keys: bool


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """The only object that ever carries a full key: the answer to a creation."""

    view: KeyView
    secret: str = field(repr=False)
    # The preset the key's scopes were copied from, if any (not stored on the key).
    preset: Preset | None = None


class KeyService:
    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        clock: Clock,
        limiter: RateLimiter | None = None,
        guard: LimitsGuard | None = None,
    ) -> None:
        self._limiter = limiter
        # Asked inside each change that gives a limit (ports.LimitsGuard); None: unguarded.
        self._guard = guard
        self._store = store
        self._hasher = hasher
        self._clock = clock

    def create(self, principal: Principal, new: NewKey) -> IssuedKey:
        with self._store.transaction() as tx:
            return self.issue_in(tx, principal, load_org(tx, principal.org_id), new)

    def issue_in(
        self,
        tx: Transaction,
        principal: Principal,
        org: Organization,
        new: NewKey,
        *,
        rotated_from: str | None = None,
    ) -> IssuedKey:
        """Issue inside a caller's transaction (also organization bootstrap and rotation),
        audited there. ``rotated_from``: the key this one replaces (services/rotation.py)."""
        now = self._clock()
        issued = self._issue(tx, principal, org, new, now, rotated_from)
        key, effective = issued.view.key, issued.view.effective
        record(
            tx,
            principal,
            now,
            "key.create",
            "key",
            key.id,
            name=key.name,
            scopes=list(key.scopes),
            effective_scopes=effective.sorted(),
            full_access=effective.is_full_access,
            app_id=key.app_id,
            environment=key.environment,
            expires_at=_iso(key.expires_at),
            **_limits_details(key),
            **preset_details(issued.preset),
        )
        return issued

    def _issue(
        self,
        tx: Transaction,
        principal: Principal,
        org: Organization,
        new: NewKey,
        now: datetime,
        rotated_from: str | None = None,
    ) -> IssuedKey:
        name = check_name("name", new.name)
        description = check_description(new.description)
        metadata = check_json_size("metadata", new.metadata, METADATA_MAX_BYTES)
        preset = None
        if new.preset is not None:
            preset = preset_instead_of_scopes(tx, org.id, new.preset, new.scopes)
            new = replace(new, scopes=preset.scopes)
        own = Catalogue(tx.resources.all(org.id)).validate("scopes", list(new.scopes))
        app = _app_for(tx, org.id, new.app_id)
        # The policy is about effective scopes: a key without its own scopes in an app
        # without scopes (made before the policy was switched on) would have full access too.
        if org.require_explicit_scopes and not new.scopes and (app is None or not app.scopes):
            raise InvalidInput.field("scopes", _explicit_scopes_required(app))
        effective = effective_scopes(tuple(own.sorted()) if new.scopes else (), app)
        principal.ensure_can_grant("scopes", effective)
        if new.profile_id is not None and tx.profiles.get(org.id, new.profile_id) is None:
            raise InvalidInput.field(
                "profile_id", f"no profile {new.profile_id!r} in this organization"
            )
        expires_at = _initial_expiry(org, new, now)
        ratelimits = check_ratelimits("ratelimits", new.ratelimits)
        quota = check_quota("quota", new.quota, now)
        allowlist = check_allowlist("ip_allowlist", new.ip_allowlist)
        if self._guard is not None and (ratelimits or quota is not None):
            self._guard.limits_added(tx, "ratelimits" if ratelimits else "quota")

        secret = mint_key(new.environment)
        key = ApiKey(
            id=new_id("key"),
            org_id=org.id,
            name=name,
            description=description,
            digest=self._hasher.digest(secret),
            digest_version=self._hasher.version,
            masked_key=mask_key(secret),
            environment=new.environment,
            scopes=tuple(own.sorted()) if new.scopes else (),
            app_id=app.id if app else None,
            profile_id=new.profile_id,
            metadata=metadata,
            stored_status="active",
            created_at=now,
            created_by=principal.actor_id,
            updated_at=now,
            expires_at=expires_at,
            rotated_from=rotated_from,
            ratelimits=ratelimits,
            quota=quota,
            ip_allowlist=allowlist,
        )
        tx.keys.insert(key)
        return IssuedKey(KeyView(key, key.status(now), effective), secret, preset)

    def get(self, principal: Principal, key_id: str) -> KeyView:
        now = self._clock()
        with self._store.read() as tx:
            view = self._view(tx, _key(tx, principal.org_id, key_id), now)
            org = tx.orgs.get(principal.org_id)
        return self._live(view, org, now)

    def _live(self, view: KeyView, org: Organization | None, now: datetime) -> KeyView:
        """The view with the limiter's current numbers (a cost-0 check: nothing spent)."""
        key = view.key
        if self._limiter is None:
            return view
        limits = merge(org.ratelimits if org else (), view.app_limits, key.ratelimits)
        if not limits and key.quota is None:
            return view
        try:
            live = self._limiter.admit(key.id, limits, key.quota, 0, now)
        except StorageUnavailable:  # Redis down and the policy closed: the stored numbers
            return view
        if len(live.limits) != len(limits):  # Redis down, admitted unchecked: same
            return view
        return replace(view, limits=live)

    def page(
        self,
        principal: Principal,
        *,
        limit: int,
        cursor: str | None = None,
        status: KeyStatus | None = None,
        app_id: str | None = None,
        q: str | None = None,
        environment: Environment | None = None,
        parent_id: str | None = None,
    ) -> Page[KeyView]:
        """Newest first. ``q`` matches a name anywhere or an id from its start, ignoring case;
        ``parent_id``: that key's children only."""
        check_limit(limit)
        after = check_cursor(cursor, "key")
        q = _search(q)
        now = self._clock()
        with self._store.read() as tx:
            page = paginate(
                lambda n: tx.keys.page(
                    principal.org_id,
                    now=now,
                    limit=n,
                    after=after,
                    status=status,
                    app_id=app_id,
                    q=q,
                    environment=environment,
                    parent_id=parent_id,
                ),
                limit,
                lambda k: k.id,
            )
            return Page(self._views(tx, principal.org_id, page.items, now), page.next_cursor)

    def full_access(self, principal: Principal, *, limit: int = 50) -> FullAccess:
        """Apps and keys that grant everything, newest first, at most ``limit`` of each."""
        check_limit(limit)
        now = self._clock()
        with self._store.read() as tx:
            apps = tx.apps.full_access(principal.org_id, limit=limit + 1)
            keys = tx.keys.full_access(principal.org_id, now=now, limit=limit + 1)
            views = self._views(tx, principal.org_id, keys[:limit], now)
        return FullAccess(apps[:limit], views, len(apps) > limit, len(keys) > limit)

    @staticmethod
    def _views(tx: Transaction, org_id: str, keys: list[ApiKey], now: datetime) -> list[KeyView]:
        apps: dict[str, App | None] = {}
        views = []
        for key in keys:
            if key.app_id is not None and key.app_id not in apps:
                apps[key.app_id] = tx.apps.get(org_id, key.app_id)
            app = apps.get(key.app_id) if key.app_id else None
            views.append(KeyView(key, key.status(now), effective_scopes(key.scopes, app)))
        return views

    def update(self, principal: Principal, key_id: str, changes: KeyChanges) -> KeyView:
        now = self._clock()
        with self._store.transaction() as tx:
            org = load_org(tx, principal.org_id)
            key = _key(tx, org.id, key_id)
            updated = key
            changed: dict[str, tuple[object, object]] = {}
            if not isinstance(changes.status, _Unset):
                updated = replace(updated, stored_status=changes.status)
                changed["status"] = (key.stored_status, changes.status)
            if not isinstance(changes.description, _Unset):
                updated = replace(updated, description=check_description(changes.description))
                changed["description"] = (key.description, updated.description)
            if not isinstance(changes.metadata, _Unset):
                metadata = check_json_size("metadata", changes.metadata, METADATA_MAX_BYTES)
                updated = replace(updated, metadata=metadata)
                # Metadata values are the customer's own data: the log keeps only its keys.
                changed["metadata_keys"] = (sorted(key.metadata), sorted(metadata))
            if not isinstance(changes.profile_id, _Unset):
                profile_id = changes.profile_id
                if profile_id is not None and tx.profiles.get(org.id, profile_id) is None:
                    raise InvalidInput.field(
                        "profile_id", f"no profile {profile_id!r} in this organization"
                    )
                updated = replace(updated, profile_id=profile_id)
                changed["profile_id"] = (key.profile_id, profile_id)
            if not isinstance(changes.expires_at, _Unset):
                expires_at = _changed_expiry(org, key, changes.expires_at, now)
                if key.rotated_to is not None and not _earlier(expires_at, key.expires_at):
                    raise InvalidInput.field(
                        "expires_at",
                        f"this key was rotated to {key.rotated_to!r}: its grace period can "
                        "only be shortened",
                    )
                updated = replace(updated, expires_at=expires_at)
                changed["expires_at"] = (_iso(key.expires_at), _iso(expires_at))
            updated, quota_change = _limit_changes(key, updated, changes, now, changed)
            if key.parent_id is not None:
                _within_parent(tx, org, key, updated, quota_change, changed, now)
            self._guard_limits(tx, updated, quota_change, changed)
            updated = replace(updated, updated_at=now)
            tx.keys.update(updated)
            _store_quota(tx, key, quota_change, changed)
            if updated.expires_at is not None and _earlier_than(updated.expires_at, key.expires_at):
                clamp_descendants(tx, principal, now, key, updated.expires_at)
            record(
                tx,
                principal,
                now,
                "key.update",
                "key",
                key.id,
                target_name=key.name,
                changes=changed,
            )
            tx.invalidations.key(key_id, principal.org_id)
            _status_reaches_descendants(tx, key, updated)
            view = self._view(tx, _key(tx, org.id, key_id), now)
        if self._limiter is not None and quota_change is not None:
            if isinstance(quota_change, int):
                self._limiter.quota_add(key_id, quota_change)
            else:
                self._limiter.quota_set(key_id, quota_change[0])
        return self._live(view, org, now)

    def _guard_limits(
        self,
        tx: Transaction,
        updated: ApiKey,
        quota_change: int | tuple[Quota | None] | None,
        changed: dict[str, tuple[object, object]],
    ) -> None:
        """A PATCH that leaves the key with rate limits it was given now, or a quota set or
        added to, asks the guard; removing them never does."""
        if self._guard is None:
            return
        if "ratelimits" in changed and updated.ratelimits:
            self._guard.limits_added(tx, "ratelimits")
        elif quota_change is not None and quota_change != (None,):
            self._guard.limits_added(tx, "quota")

    def delete(self, principal: Principal, key_id: str) -> None:
        now = self._clock()
        with self._store.transaction() as tx:
            key = _key(tx, principal.org_id, key_id)
            # Its descendants go with it (services/delegation.py), each audited.
            gone = delete_descendants(tx, principal, now, key)
            tx.keys.delete(principal.org_id, key_id)
            record(tx, principal, now, "key.delete", "key", key.id, name=key.name)
            tx.invalidations.key(key_id, principal.org_id)
        if self._limiter is not None:
            for ident in (key_id, *gone):
                self._limiter.forget(ident)

    def _view(self, tx: Transaction, key: ApiKey, now: datetime) -> KeyView:
        app = tx.apps.get(key.org_id, key.app_id) if key.app_id else None
        view = KeyView(key, key.status(now), effective_scopes(key.scopes, app))
        return replace(view, app_limits=app.ratelimits if app else ())


def _limits_details(key: ApiKey) -> dict[str, Any]:
    """What a creation records of the key's limits (nothing for a key without any)."""
    details: dict[str, Any] = {}
    if key.ratelimits:
        details["ratelimits"] = ratelimits_json(key.ratelimits)
    if key.quota is not None:
        details["quota"] = key.quota.as_json()
    if key.ip_allowlist:
        details["ip_allowlist"] = list(key.ip_allowlist)
    return details


QuotaChange = int | tuple[Quota | None] | None


def _limit_changes(
    key: ApiKey,
    updated: ApiKey,
    changes: KeyChanges,
    now: datetime,
    changed: dict[str, tuple[object, object]],
) -> tuple[ApiKey, QuotaChange]:
    """A PATCH's rate limits and allowlist applied to ``updated``, and its quota change
    (stored separately: see _store_quota)."""
    if not isinstance(changes.ratelimits, _Unset):
        limits = check_ratelimits("ratelimits", changes.ratelimits)
        updated = replace(updated, ratelimits=limits)
        changed["ratelimits"] = (ratelimits_json(key.ratelimits), ratelimits_json(limits))
    if not isinstance(changes.ip_allowlist, _Unset):
        allowlist = check_allowlist("ip_allowlist", changes.ip_allowlist)
        updated = replace(updated, ip_allowlist=allowlist)
        changed["ip_allowlist"] = (list(key.ip_allowlist), list(allowlist))
    if isinstance(changes.quota, _Unset):
        return updated, None
    return updated, _quota_change(key.quota, changes.quota, now)


def _store_quota(
    tx: Transaction, key: ApiKey, change: QuotaChange, changed: dict[str, tuple[object, object]]
) -> None:
    """An addition is relative (spends not yet written still apply); a replacement is not."""
    if isinstance(change, int):
        tx.keys.add_quota(key.org_id, key.id, change)
        changed["quota_added"] = (None, change)
    elif change is not None:
        tx.keys.set_quota(key.org_id, key.id, change[0])
        changed["quota"] = (
            key.quota.as_json() if key.quota else None,
            change[0].as_json() if change[0] else None,
        )


def _quota_change(current: Quota | None, value: Any, now: datetime) -> int | tuple[Quota | None]:
    """A PATCH's quota: an amount to add, or (the replacing quota or None,)."""
    if value is None:
        return (None,)
    if isinstance(value, dict) and "add" in value:
        if len(value) > 1:
            raise InvalidInput.field("quota.add", "cannot be combined with other quota fields")
        if current is None:
            raise InvalidInput.field("quota.add", "this key has no quota to add to")
        amount = value["add"]
        if isinstance(amount, bool) or not isinstance(amount, int) or not 1 <= amount <= QUOTA_MAX:
            raise InvalidInput.field("quota.add", f"must be an integer between 1 and {QUOTA_MAX}")
        return amount
    if isinstance(value, dict) and "refill" not in value and current is not None:
        value = {**value, "refill": current.refill.as_json() if current.refill else None}
    replaced = check_quota("quota", value, now)
    if replaced is not None and current is not None and replaced.refill == current.refill:
        # Same refill: the refill already applied stays applied.
        replaced = replace(replaced, refilled_at=current.refilled_at or replaced.refilled_at)
    return (replaced,)


def _key(tx: Transaction, org_id: str, key_id: str) -> ApiKey:
    key = tx.keys.get(org_id, key_id)
    if key is None:
        raise NotFound("key", key_id)
    return key


def _explicit_scopes_required(app: App | None) -> str:
    if app is None:
        return (
            "this organization requires explicit scopes: a key without scopes would have "
            "full access"
        )
    return (
        f"this organization requires explicit scopes: app {app.name!r} has none, so a key "
        "without scopes of its own would have full access; give the key scopes, or the app"
    )


def _search(q: str | None) -> str | None:
    """A search term: trimmed, empty means none; bounded like a name, no NUL."""
    if q is None or not q.strip():
        return None
    q = q.strip()
    if len(q) > NAME_MAX:
        raise InvalidInput.field("q", f"must be at most {NAME_MAX} characters")
    if "\x00" in q:
        raise InvalidInput.field("q", "must not contain NUL characters")
    return q


def _app_for(tx: Transaction, org_id: str, app_id: str | None) -> App | None:
    if app_id is None:
        return None
    app = tx.apps.get(org_id, app_id)
    if app is None:
        raise InvalidInput.field("app_id", f"no app {app_id!r} in this organization")
    return app


def _initial_expiry(org: Organization, new: NewKey, now: datetime) -> datetime | None:
    if new.expires_at is not None and new.expires_in_days is not None:
        raise InvalidInput.field(
            "expires_in_days", "give either expires_at or expires_in_days, not both"
        )
    expires_at = new.expires_at
    if new.expires_in_days is not None:
        if not EXPIRES_IN_DAYS_MIN <= new.expires_in_days <= EXPIRES_IN_DAYS_MAX:
            raise InvalidInput.field(
                "expires_in_days",
                f"must be between {EXPIRES_IN_DAYS_MIN} and {EXPIRES_IN_DAYS_MAX}",
            )
        expires_at = now + timedelta(days=new.expires_in_days)
    field_name = "expires_in_days" if new.expires_in_days is not None else "expires_at"
    return _within_policy(org, field_name, expires_at, created_at=now, now=now)


def _changed_expiry(
    org: Organization, key: ApiKey, expires_at: datetime | None, now: datetime
) -> datetime | None:
    moves_earlier = expires_at is not None and (
        key.expires_at is None or expires_at <= key.expires_at
    )
    if moves_earlier:
        return _within_policy(
            org, "expires_at", expires_at, created_at=key.created_at, now=now, cap=False
        )
    return _within_policy(org, "expires_at", expires_at, created_at=key.created_at, now=now)


def _within_policy(
    org: Organization,
    field_name: str,
    expires_at: datetime | None,
    *,
    created_at: datetime,
    now: datetime,
    cap: bool = True,
) -> datetime | None:
    """An expiry in the future and, when the org caps key lifetime, within that cap."""
    maximum = org.max_key_lifetime_days
    if expires_at is None:
        if maximum is not None:
            raise InvalidInput.field(
                field_name, f"this organization requires every key to expire within {maximum} days"
            )
        return None
    if expires_at.tzinfo is None:
        raise InvalidInput.field(field_name, "must include a time zone offset (RFC 3339)")
    try:
        too_far = expires_at > now + timedelta(days=EXPIRES_IN_DAYS_MAX)
    except OverflowError:  # beyond what a datetime can hold once moved to UTC
        too_far = True
    if too_far:
        raise InvalidInput.field(field_name, f"must be within {EXPIRES_IN_DAYS_MAX} days from now")
    if expires_at <= now:
        raise InvalidInput.field(field_name, "must be in the future")
    if cap and maximum is not None and expires_at > created_at + timedelta(days=maximum):
        raise InvalidInput.field(
            field_name,
            f"exceeds this organization's maximum key lifetime of {maximum} days from creation",
        )
    return expires_at


def _within_parent(
    tx: Transaction,
    org: Organization,
    key: ApiKey,
    updated: ApiKey,
    quota_change: QuotaChange,
    changed: dict[str, tuple[object, object]],
    now: datetime,
) -> None:
    """A delegated key stays within its parent (domain/delegation.py): a PATCH may not move
    its expiry past the parent's, nor loosen its rate limits or quota beyond the parent's."""
    parent = tx.keys.get(key.org_id, key.parent_id) if key.parent_id else None
    if parent is None:  # deleted in a concurrent transaction: this key goes with it
        raise NotFound("key", key.id)
    if (
        "expires_at" in changed
        and parent.expires_at is not None
        and (updated.expires_at is None or updated.expires_at > parent.expires_at)
    ):
        raise InvalidInput.field(
            "expires_at",
            f"must not be after the parent key's expiry ({parent.expires_at.isoformat()})",
        )
    errors = []
    if "ratelimits" in changed:
        app = tx.apps.get(org.id, key.app_id) if key.app_id else None
        defaults = (org.ratelimits, app.ratelimits if app else ())
        errors += looser_ratelimits(
            merge(*defaults, updated.ratelimits), merge(*defaults, parent.ratelimits)
        )
    if isinstance(quota_change, int):
        errors.append(FieldError("quota.add", "a delegated key's quota cannot be raised"))
    elif quota_change is not None:
        parent_quota = parent.quota.current(now) if parent.quota else None
        errors += looser_quota(quota_change[0], parent_quota)
    if errors:
        raise InvalidInput(*errors)


def _earlier_than(candidate: datetime, current: datetime | None) -> bool:
    return current is None or candidate < current


def _earlier(candidate: datetime | None, current: datetime | None) -> bool:
    """``candidate`` ends no later than ``current`` (None: never ends)."""
    return candidate is not None and (current is None or candidate <= current)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _status_reaches_descendants(tx: Transaction, before: ApiKey, after: ApiKey) -> None:
    """A key disabled or enabled stops or restarts its delegated keys with it."""
    if after.stored_status != before.stored_status:
        notify_descendants(tx, before)
