"""The permission catalogue: built-in resources are fixed; an organization adds its own."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from keyplane.domain.catalogue import BUILTIN_RESOURCES, DEFAULT_ACTIONS, Catalogue, Resource
from keyplane.domain.errors import Conflict, FieldError, InvalidInput, NotFound
from keyplane.domain.limits import RESOURCE_ACTIONS_MAX
from keyplane.domain.ports import Clock, Store, Transaction
from keyplane.domain.scopes import ACTION_NAME, RESOURCE_NAME, parse_scope
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_description,
    check_name,
    diff,
    record,
)

IN_USE_LISTED = 10


@dataclass(frozen=True, slots=True)
class ResourceChanges:
    title: str | _Unset = UNSET
    description: str | _Unset = UNSET
    actions: tuple[str, ...] | _Unset = UNSET


class ResourceService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def catalogue(self, principal: Principal) -> list[Resource]:
        with self._store.read() as tx:
            return Catalogue(tx.resources.all(principal.org_id)).all()

    def get(self, principal: Principal, name: str) -> Resource:
        with self._store.read() as tx:
            resource = Catalogue(tx.resources.all(principal.org_id)).get(name)
            if resource is None:
                raise NotFound("resource", name)
            return resource

    def create(
        self,
        principal: Principal,
        name: str,
        title: str | None = None,
        description: str = "",
        actions: Sequence[str] | None = None,
    ) -> Resource:
        if RESOURCE_NAME.fullmatch(name) is None:
            raise InvalidInput.field(
                "name",
                "must start with a lowercase letter and hold only a-z, 0-9 and _ (at most 40)",
            )
        now = self._clock()
        with self._store.transaction() as tx:
            if name in BUILTIN_RESOURCES or tx.resources.get(principal.org_id, name) is not None:
                raise Conflict(f"A resource named {name!r} already exists.", field="name")
            resource = Resource(
                name=name,
                title=check_name("title", title if title is not None else name),
                description=check_description(description),
                actions=_actions(actions if actions is not None else DEFAULT_ACTIONS),
                builtin=False,
                created_at=now,
                updated_at=now,
            )
            tx.resources.insert(principal.org_id, resource)
            record(
                tx,
                principal,
                now,
                "resource.create",
                "resource",
                name,
                actions=list(resource.actions),
            )
            return resource

    def update(self, principal: Principal, name: str, changes: ResourceChanges) -> Resource:
        now = self._clock()
        with self._store.transaction() as tx:
            resource = _custom(tx, principal.org_id, name)
            updated = resource
            if not isinstance(changes.title, _Unset):
                updated = replace(updated, title=check_name("title", changes.title))
            if not isinstance(changes.description, _Unset):
                updated = replace(updated, description=check_description(changes.description))
            if not isinstance(changes.actions, _Unset):
                actions = _actions(changes.actions)
                removed = set(resource.actions) - set(actions)
                users = _users_of(tx, principal.org_id, name, removed)
                if users:
                    raise Conflict(
                        f"Actions {sorted(removed)} of {name!r} are still granted to {users}; "
                        "change those first.",
                        field="actions",
                    )
                updated = replace(updated, actions=actions)
            updated = replace(updated, updated_at=now)
            tx.resources.update(principal.org_id, updated)
            # No cached verdict depends on the catalogue today (only removable actions that
            # nothing grants can go), but a record is derived from the org's catalogue, so
            # a change to it forgets the org's records: rare, and never wrong.
            tx.invalidations.org(principal.org_id)
            record(
                tx,
                principal,
                now,
                "resource.update",
                "resource",
                name,
                target_name=name,
                changes={
                    **diff(resource, updated, ("title", "description")),
                    "actions": (list(resource.actions), list(updated.actions)),
                },
            )
            return updated

    def delete(self, principal: Principal, name: str) -> None:
        now = self._clock()
        with self._store.transaction() as tx:
            resource = _custom(tx, principal.org_id, name)
            users = _users_of(tx, principal.org_id, name, None)
            if users:
                raise Conflict(
                    f"Resource {name!r} is still granted to {users}; change those first."
                )
            tx.resources.delete(principal.org_id, name)
            tx.invalidations.org(principal.org_id)
            record(tx, principal, now, "resource.delete", "resource", resource.name)


def _custom(tx: Transaction, org_id: str, name: str) -> Resource:
    if name in BUILTIN_RESOURCES:
        raise Conflict(f"{name!r} is a built-in resource: it cannot be changed or deleted.")
    resource = tx.resources.get(org_id, name)
    if resource is None:
        raise NotFound("resource", name)
    return resource


def _actions(actions: Sequence[str]) -> tuple[str, ...]:
    if not actions:
        raise InvalidInput.field("actions", "must list at least one action")
    if len(actions) > RESOURCE_ACTIONS_MAX:
        raise InvalidInput.field("actions", f"at most {RESOURCE_ACTIONS_MAX} actions")
    errors = [
        FieldError(
            f"actions[{i}]", f"{a!r} is not an action name: lowercase letters, digits, _ and -"
        )
        for i, a in enumerate(actions)
        if ACTION_NAME.fullmatch(a) is None
    ]
    if errors:
        raise InvalidInput(*errors)
    if len(set(actions)) != len(actions):
        raise InvalidInput.field("actions", "lists an action twice")
    return tuple(actions)


def _users_of(tx: Transaction, org_id: str, name: str, actions: set[str] | None) -> str:
    """Who grants ``name`` (any action, or one of ``actions``), as text naming them."""

    def uses(scopes: tuple[str, ...]) -> bool:
        for scope in scopes:
            parsed = parse_scope(scope)
            if parsed is None or parsed[0] != name:
                continue
            if actions is None or parsed[1] in actions:
                return True
        return False

    holders = [f"app {i}" for i, s in tx.apps.scoped(org_id) if uses(s)]
    holders += [f"key {i}" for i, s in tx.keys.scoped(org_id) if uses(s)]
    holders += [f"preset {i}" for i, s in tx.presets.scoped(org_id) if uses(s)]
    if not holders:
        return ""
    more = ", …" if len(holders) > IN_USE_LISTED else ""
    return ", ".join(holders[:IN_USE_LISTED]) + more
