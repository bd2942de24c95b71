"""Apps: groups of keys sharing one scope set. A scope change governs every key at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput, NotFound
from keyplane.domain.ids import new_id
from keyplane.domain.models import App, Organization, Page
from keyplane.domain.ports import Clock, LimitsGuard, Store, Transaction
from keyplane.domain.ratelimits import check_ratelimits, ratelimits_json
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_description,
    check_limit,
    check_name,
    load_org,
    paginate,
    record,
)
from keyplane.services.presets import preset_details, preset_instead_of_scopes


@dataclass(frozen=True, slots=True)
class AppChanges:
    name: str | _Unset = UNSET
    description: str | _Unset = UNSET
    scopes: tuple[str, ...] | _Unset = UNSET
    ratelimits: Sequence[Any] | _Unset = UNSET


class AppService:
    def __init__(self, store: Store, clock: Clock, guard: LimitsGuard | None = None) -> None:
        self._store = store
        self._clock = clock
        # Asked inside each change that gives a limit (ports.LimitsGuard); None: unguarded.
        self._guard = guard

    def create(
        self,
        principal: Principal,
        name: str,
        description: str = "",
        scopes: tuple[str, ...] = (),
        ratelimits: Sequence[Any] = (),
        preset: str | None = None,
    ) -> App:
        """``ratelimits``: defaults for the app's keys (a key's own limit of the same name
        overrides one; domain/ratelimits.py). ``preset``: a preset's name or id instead of
        ``scopes``; the app gets a copy of its scopes (services/presets.py)."""
        now = self._clock()
        limits = check_ratelimits("ratelimits", list(ratelimits))
        with self._store.transaction() as tx:
            org = load_org(tx, principal.org_id)
            name = self._unique_name(tx, org.id, name, None)
            used = None
            if preset is not None:
                used = preset_instead_of_scopes(tx, org.id, preset, scopes)
                scopes = used.scopes
            scope_set = _scopes(tx, org, principal, scopes)
            app = App(
                id=new_id("app"),
                org_id=org.id,
                name=name,
                description=check_description(description),
                scopes=tuple(scope_set.sorted()) if scopes else (),
                created_by=principal.actor_id,
                created_at=now,
                updated_at=now,
                ratelimits=limits,
            )
            if limits and self._guard is not None:
                self._guard.limits_added(tx, "ratelimits")
            tx.apps.insert(app)
            record(
                tx,
                principal,
                now,
                "app.create",
                "app",
                app.id,
                name=app.name,
                scopes=list(app.scopes),
                full_access=app.scope_set.is_full_access,
                ratelimits=ratelimits_json(limits),
                **preset_details(used),
            )
            return app

    def get(self, principal: Principal, app_id: str) -> App:
        with self._store.read() as tx:
            return _app(tx, principal.org_id, app_id)

    def page(self, principal: Principal, *, limit: int, cursor: str | None = None) -> Page[App]:
        check_limit(limit)
        after = check_cursor(cursor, "app")
        with self._store.read() as tx:
            return paginate(
                lambda n: tx.apps.page(principal.org_id, limit=n, after=after),
                limit,
                lambda a: a.id,
            )

    def update(self, principal: Principal, app_id: str, changes: AppChanges) -> App:
        now = self._clock()
        with self._store.transaction() as tx:
            org = load_org(tx, principal.org_id)
            app = _app(tx, org.id, app_id)
            updated = app
            changed: dict[str, tuple[object, object]] = {}
            if not isinstance(changes.name, _Unset):
                updated = replace(updated, name=self._unique_name(tx, org.id, changes.name, app.id))
                changed["name"] = (app.name, updated.name)
            if not isinstance(changes.description, _Unset):
                updated = replace(updated, description=check_description(changes.description))
                changed["description"] = (app.description, updated.description)
            if not isinstance(changes.scopes, _Unset):
                scope_set = _scopes(tx, org, principal, changes.scopes)
                updated = replace(
                    updated, scopes=tuple(scope_set.sorted()) if changes.scopes else ()
                )
                changed["scopes"] = (list(app.scopes), list(updated.scopes))
            if not isinstance(changes.ratelimits, _Unset):
                limits = check_ratelimits("ratelimits", list(changes.ratelimits))
                updated = replace(updated, ratelimits=limits)
                changed["ratelimits"] = (ratelimits_json(app.ratelimits), ratelimits_json(limits))
                if limits and self._guard is not None:
                    self._guard.limits_added(tx, "ratelimits")
            updated = replace(updated, updated_at=now)
            tx.apps.update(updated)
            record(
                tx,
                principal,
                now,
                "app.update",
                "app",
                app.id,
                target_name=updated.name,
                changes=changed,
            )
            tx.invalidations.app(app_id, principal.org_id)
            return _app(tx, org.id, app_id)

    def delete(self, principal: Principal, app_id: str) -> list[str]:
        """Deletes the app and every key in it; answers the deleted keys' ids."""
        now = self._clock()
        with self._store.transaction() as tx:
            app = _app(tx, principal.org_id, app_id)
            key_ids = tx.keys.ids_in_app(principal.org_id, app_id)
            tx.apps.delete(principal.org_id, app_id)
            record(
                tx, principal, now, "app.delete", "app", app.id, name=app.name, deleted_keys=key_ids
            )
            # Every key of the app is cached under it: the app's notice forgets them all.
            tx.invalidations.app(app_id, principal.org_id)
        return key_ids

    @staticmethod
    def _unique_name(tx: Transaction, org_id: str, name: str, own_id: str | None) -> str:
        name = check_name("name", name)
        existing = tx.apps.find_by_name(org_id, name)
        if existing is not None and existing.id != own_id:
            raise Conflict(f"An app named {name!r} already exists ({existing.id}).", field="name")
        return name


def _scopes(
    tx: Transaction, org: Organization, principal: Principal, scopes: tuple[str, ...]
) -> ScopeSet:
    scope_set = Catalogue(tx.resources.all(org.id)).validate("scopes", list(scopes))
    if not scopes:
        if org.require_explicit_scopes:
            raise InvalidInput.field(
                "scopes",
                "this organization requires explicit scopes: "
                "an app without scopes would grant full access",
            )
        scope_set = ScopeSet.full()
    principal.ensure_can_grant("scopes", scope_set)
    return scope_set


def _app(tx: Transaction, org_id: str, app_id: str) -> App:
    app = tx.apps.get(org_id, app_id)
    if app is None:
        raise NotFound("app", app_id)
    return app
