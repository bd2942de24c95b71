"""Organizations: the tenant boundary, its key policies, and bootstrapping a new one."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput
from keyplane.domain.expiry import (
    check_retention_days,
    check_rotation_period_days,
    check_warning_days,
)
from keyplane.domain.ids import new_id
from keyplane.domain.leaks import LEAKED_KEY_ACTIONS, LeakedKeyAction
from keyplane.domain.limits import EXPIRES_IN_DAYS_MAX
from keyplane.domain.models import Identity, Organization, User
from keyplane.domain.ports import Clock, LimitsGuard, Store
from keyplane.domain.ratelimits import check_ratelimits, ratelimits_json
from keyplane.domain.routes import check_route_table, route_table_json
from keyplane.domain.scopes import ScopeSet
from keyplane.services.apps import AppService
from keyplane.services.common import UNSET, Principal, _Unset, check_name, diff, load_org, record
from keyplane.services.keys import KeyService, NewKey
from keyplane.services.presets import PresetService
from keyplane.services.profiles import ProfileService
from keyplane.services.resources import ResourceService

# Deliberately loose: one @, something on each side, a dot in the domain. Deliverability is
# proven by the set-password mail, not by a regular expression.
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")

DEMO_KEY_DAYS = 1
# The demo organization's small, realistic setup: an ML platform guarding its models. The
# README's walkthrough uses these names.
DEMO_RESOURCE = "models"
DEMO_APP = "acme"
DEMO_PROFILE = "free-tier"
DEMO_SCANNER = "scanner"
# Permission presets as the seeds' platforms publish them per integration: what a model
# scanner CLI, a read-only dashboard and a deploying CI job need, and nothing more.
DEMO_PRESETS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "Model scanner CLI",
        "The model scanner in hybrid mode: reads and records models, uploads scan results.",
        (f"{DEMO_RESOURCE}:read", f"{DEMO_RESOURCE}:write", f"{DEMO_SCANNER}:write"),
    ),
    (
        "Read-only dashboard",
        "A dashboard showing models and their usage; changes nothing.",
        (f"{DEMO_RESOURCE}:read", "analytics:read"),
    ),
    (
        "CI deployer",
        "A CI job that ships models: reads them and deploys new versions.",
        (f"{DEMO_RESOURCE}:read", f"{DEMO_RESOURCE}:deploy"),
    ),
)


SETTINGS = (
    "name",
    "require_explicit_scopes",
    "max_key_lifetime_days",
    "expired_key_retention_days",
    "rotation_period_days",
    "leaked_key_action",
)


@dataclass(frozen=True, slots=True)
class OrgChanges:
    name: str | _Unset = UNSET
    require_explicit_scopes: bool | _Unset = UNSET
    max_key_lifetime_days: int | _Unset | None = UNSET
    expired_key_retention_days: int | _Unset = UNSET
    expiry_warning_days: tuple[int, ...] | _Unset = UNSET
    rotation_period_days: int | _Unset | None = UNSET
    ratelimits: Sequence[Any] | _Unset = UNSET
    leaked_key_action: str | _Unset = UNSET
    # [{method, path, scopes}] (domain/routes.py), in order: the first match decides.
    route_table: Sequence[Any] | _Unset = UNSET


@dataclass(frozen=True, slots=True)
class Bootstrapped:
    org: Organization
    owner: User
    key_id: str
    api_key: str = field(repr=False)


def check_leaked_key_action(value: str) -> LeakedKeyAction:
    for action in LEAKED_KEY_ACTIONS:
        if value == action:
            return action
    raise InvalidInput.field(
        "leaked_key_action", f"must be one of {', '.join(map(repr, LEAKED_KEY_ACTIONS))}"
    )


def check_email(value: str, field_name: str = "owner_email") -> str:
    email = value.strip().lower()
    if len(email) > 254 or "\x00" in email or _EMAIL.fullmatch(email) is None:
        raise InvalidInput.field(field_name, "is not an email address")
    return email


class OrgService:
    def __init__(
        self, store: Store, keys: KeyService, clock: Clock, guard: LimitsGuard | None = None
    ) -> None:
        self._store = store
        self._keys = keys
        self._clock = clock
        # Asked inside each change that gives a limit (ports.LimitsGuard); None: unguarded.
        self._guard = guard

    def create(
        self,
        name: str,
        owner_email: str,
        owner_name: str = "",
        *,
        owner_key: NewKey | None = None,
    ) -> Bootstrapped:
        """A new organization, its owner, and a full-access key for the owner (shown once)."""
        now = self._clock()
        email = check_email(owner_email)
        org = Organization(
            id=new_id("org"),
            name=check_name("name", name),
            require_explicit_scopes=False,
            max_key_lifetime_days=None,
            created_at=now,
            updated_at=now,
        )
        with self._store.transaction() as tx:
            # The operator creates organizations: an address that already signs in elsewhere
            # becomes this one's owner too, with its password unchanged.
            identity = tx.identities.find_by_email(email)
            if identity is None:
                identity = Identity(new_id("idn"), email, now)
                tx.identities.insert(identity)
            owner = User(
                id=new_id("usr"),
                org_id=org.id,
                email=email,
                name=owner_name.strip() or email.split("@")[0],
                role="owner",
                created_at=now,
                identity_id=identity.id,
                password_hash=identity.password_hash,
            )
            principal = Principal(org.id, owner.id, ScopeSet.full())
            tx.orgs.insert(org)
            tx.users.insert(owner)
            issued = self._keys.issue_in(
                tx,
                principal,
                org,
                owner_key or NewKey(name="Owner key", description=f"Full-access key for {email}"),
            )
            record(tx, principal, now, "org.create", "org", org.id, name=org.name, owner=owner.id)
        return Bootstrapped(org, owner, issued.view.key.id, issued.secret)

    def demo(self, name: str, owner_email: str) -> Bootstrapped:
        """The demo organization (created on first use) with a new full-access key that
        expires in a day.

        Keys are shown once, so a restart cannot show the previous one and issues another;
        the day's expiry keeps restarts from piling up full-access keys that never end.
        """
        key = NewKey(
            name=f"Demo key {self._clock():%Y-%m-%d %H:%M}",
            description="Printed by `keyplane serve --demo`; expires after a day.",
            expires_in_days=DEMO_KEY_DAYS,
        )
        with self._store.transaction() as tx:
            org = tx.orgs.find_by_name(name)
            owner = tx.users.find_owner(org.id) if org is not None else None
            if org is not None and owner is not None:
                principal = Principal(org.id, owner.id, ScopeSet.full())
                issued = self._keys.issue_in(tx, principal, org, key)
                return Bootstrapped(org, owner, issued.view.key.id, issued.secret)
        return self.create(name, owner_email, owner_key=key)

    def get(self, principal: Principal) -> Organization:
        with self._store.read() as tx:
            return load_org(tx, principal.org_id)

    def update(self, principal: Principal, changes: OrgChanges) -> Organization:
        now = self._clock()
        with self._store.transaction() as tx:
            org = load_org(tx, principal.org_id)
            updated = org
            if not isinstance(changes.name, _Unset):
                updated = replace(updated, name=check_name("name", changes.name))
            if not isinstance(changes.require_explicit_scopes, _Unset):
                updated = replace(updated, require_explicit_scopes=changes.require_explicit_scopes)
            if not isinstance(changes.max_key_lifetime_days, _Unset):
                days = changes.max_key_lifetime_days
                if days is not None and not 1 <= days <= EXPIRES_IN_DAYS_MAX:
                    raise InvalidInput.field(
                        "max_key_lifetime_days",
                        f"must be between 1 and {EXPIRES_IN_DAYS_MAX}, or null",
                    )
                updated = replace(updated, max_key_lifetime_days=days)
            if not isinstance(changes.expired_key_retention_days, _Unset):
                retention = check_retention_days(changes.expired_key_retention_days)
                updated = replace(updated, expired_key_retention_days=retention)
            if not isinstance(changes.expiry_warning_days, _Unset):
                warning_days = check_warning_days(changes.expiry_warning_days)
                updated = replace(updated, expiry_warning_days=warning_days)
            if not isinstance(changes.rotation_period_days, _Unset):
                period = check_rotation_period_days(changes.rotation_period_days)
                updated = replace(updated, rotation_period_days=period)
            if not isinstance(changes.leaked_key_action, _Unset):
                action = check_leaked_key_action(changes.leaked_key_action)
                updated = replace(updated, leaked_key_action=action)
            settings_changed: dict[str, tuple[object, object]] = {}
            if not isinstance(changes.ratelimits, _Unset):
                limits = check_ratelimits("ratelimits", list(changes.ratelimits))
                updated = replace(updated, ratelimits=limits)
                if limits and self._guard is not None:
                    self._guard.limits_added(tx, "ratelimits")
                settings_changed["ratelimits"] = (
                    ratelimits_json(org.ratelimits),
                    ratelimits_json(limits),
                )
            if not isinstance(changes.route_table, _Unset):
                catalogue = Catalogue(tx.resources.all(org.id))
                routes = check_route_table("route_table", list(changes.route_table), catalogue)
                updated = replace(updated, route_table=routes)
                settings_changed["route_table"] = (
                    route_table_json(org.route_table),
                    route_table_json(routes),
                )
            updated = replace(updated, updated_at=now)
            tx.orgs.update(updated)
            record(
                tx,
                principal,
                now,
                "org.update",
                "org",
                org.id,
                target_name=updated.name,
                changes={
                    **diff(org, updated, SETTINGS),
                    # A list in the log, as the API shows it.
                    "expiry_warning_days": (
                        list(org.expiry_warning_days),
                        list(updated.expiry_warning_days),
                    ),
                    **settings_changed,
                },
            )
            tx.invalidations.org(org.id)
        return updated


def furnish_demo(
    owner: Principal,
    resources: ResourceService,
    apps: AppService,
    profiles: ProfileService,
    presets: PresetService,
) -> None:
    """Gives the demo organization two resources, an app, a profile and a few permission
    presets, once: whatever exists under those names already (from an earlier start) is
    left as it is."""
    steps: list[Callable[[], object]] = [
        lambda: resources.create(
            owner,
            DEMO_RESOURCE,
            title="Models",
            description="The models your API serves.",
            actions=("read", "write", "deploy"),
        ),
        lambda: apps.create(
            owner,
            DEMO_APP,
            "A customer: its keys may call the models, nothing else.",
            (f"{DEMO_RESOURCE}:read",),
        ),
        lambda: profiles.create(
            owner,
            DEMO_PROFILE,
            "Settings your API reads from a verification to serve a free-tier customer.",
            {"requests_per_minute": 60, "max_tokens": 1024},
        ),
        lambda: resources.create(
            owner,
            DEMO_SCANNER,
            title="Model scanner",
            description="Scan results the model scanner uploads.",
            actions=("write",),
        ),
    ]
    steps += [
        functools.partial(presets.create, owner, name, description, scopes)
        for name, description, scopes in DEMO_PRESETS
    ]
    for step in steps:
        try:
            step()
        except Conflict:
            continue  # made by an earlier start
