"""Permission presets: named scope sets an organization records once ("Model scanner CLI":
``models:read``, ``models:write``, ``scanner:write``) to start keys and apps from.

A preset is a template: a key or an app made from it gets its own copy of the scopes, and
later changes to the preset reach nobody (an app, by contrast, is a live group). So using a
preset is checked exactly as typing its scopes would be (the caller must hold them).

Saving one is held to the same rule, although it grants nothing by itself: whoever creates
or changes a preset must hold the scopes it ends up with. A preset is advice others act on
without reading every scope; were it free to write, a narrow key with ``resources:write``
could turn "Read-only dashboard" into ``*`` and wait for an administrator to mint a key
from it. What was given up: an administrator cannot prepare a preset for scopes they lack
(they could not create the key either). Deleting a preset grants nothing and is not held.

A resource a preset names cannot be deleted (nor the action removed) while the preset
names it, as for apps and keys (services/resources.py): change or delete the preset first.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput, NotFound
from keyplane.domain.ids import has_kind, new_id
from keyplane.domain.limits import PAGE_MAX
from keyplane.domain.models import Page, Preset
from keyplane.domain.ports import Clock, Store, Transaction
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_description,
    check_limit,
    check_name,
    diff,
    paginate,
    record,
)


@dataclass(frozen=True, slots=True)
class PresetChanges:
    name: str | _Unset = UNSET
    description: str | _Unset = UNSET
    scopes: tuple[str, ...] | _Unset = UNSET


class PresetService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(
        self, principal: Principal, name: str, description: str = "", scopes: tuple[str, ...] = ()
    ) -> Preset:
        now = self._clock()
        with self._store.transaction() as tx:
            preset = Preset(
                id=new_id("pst"),
                org_id=principal.org_id,
                name=_unique_name(tx, principal.org_id, name, None),
                description=check_description(description),
                scopes=_scopes(tx, principal, scopes),
                created_by=principal.actor_id,
                created_at=now,
                updated_at=now,
            )
            tx.presets.insert(preset)
            record(
                tx,
                principal,
                now,
                "preset.create",
                "preset",
                preset.id,
                name=preset.name,
                scopes=list(preset.scopes),
            )
            return preset

    def get(self, principal: Principal, preset_id: str) -> Preset:
        with self._store.read() as tx:
            return _preset(tx, principal.org_id, preset_id)

    def page(self, principal: Principal, *, limit: int, cursor: str | None = None) -> Page[Preset]:
        check_limit(limit)
        after = check_cursor(cursor, "pst")
        with self._store.read() as tx:
            return paginate(
                lambda n: tx.presets.page(principal.org_id, limit=n, after=after),
                limit,
                lambda p: p.id,
            )

    def choices(self, principal: Principal) -> list[Preset]:
        """The organization's presets by name, for a form's "Start from a preset"."""
        with self._store.read() as tx:
            return tx.presets.all(principal.org_id, limit=PAGE_MAX)

    def update(self, principal: Principal, preset_id: str, changes: PresetChanges) -> Preset:
        now = self._clock()
        with self._store.transaction() as tx:
            preset = _preset(tx, principal.org_id, preset_id)
            updated = preset
            if not isinstance(changes.name, _Unset):
                updated = replace(
                    updated, name=_unique_name(tx, preset.org_id, changes.name, preset.id)
                )
            if not isinstance(changes.description, _Unset):
                updated = replace(updated, description=check_description(changes.description))
            if not isinstance(changes.scopes, _Unset):
                updated = replace(updated, scopes=_scopes(tx, principal, changes.scopes))
            else:
                # A rename is held too: it could relabel scopes the caller lacks (above).
                principal.ensure_can_grant("scopes", ScopeSet.of(updated.scopes))
            updated = replace(updated, updated_at=now)
            tx.presets.update(updated)
            changed = diff(preset, updated, ("name", "description"))
            changed["scopes"] = (list(preset.scopes), list(updated.scopes))
            record(
                tx,
                principal,
                now,
                "preset.update",
                "preset",
                preset.id,
                target_name=updated.name,
                changes=changed,
            )
        return updated

    def delete(self, principal: Principal, preset_id: str) -> None:
        """Keys and apps made from the preset keep their scopes: they hold copies."""
        now = self._clock()
        with self._store.transaction() as tx:
            preset = _preset(tx, principal.org_id, preset_id)
            tx.presets.delete(principal.org_id, preset_id)
            record(tx, principal, now, "preset.delete", "preset", preset.id, name=preset.name)


def find_preset(tx: Transaction, org_id: str, ref: str, field: str = "preset") -> Preset:
    """The preset a creation names by id or by name; InvalidInput naming ``field`` when the
    organization has none such (a body naming something missing is invalid input, as an
    unknown ``profile_id`` is, not a missing page)."""
    found = tx.presets.get(org_id, ref) if has_kind(ref, "pst") else None
    if found is None:
        found = tx.presets.find_by_name(org_id, ref.strip())
    if found is None:
        raise InvalidInput.field(field, f"no preset {ref!r} in this organization")
    return found


def preset_instead_of_scopes(
    tx: Transaction, org_id: str, ref: str, scopes: tuple[str, ...] | list[str]
) -> Preset:
    """The preset a key or app creation names in place of its scopes (never both)."""
    if scopes:
        raise InvalidInput.field("preset", "give either scopes or a preset, not both")
    return find_preset(tx, org_id, ref)


def preset_details(preset: Preset | None) -> dict[str, Any]:
    """An audit event's words for the preset a creation used: ``preset: {id, name}``, or
    nothing when it used none."""
    return {"preset": {"id": preset.id, "name": preset.name}} if preset is not None else {}


def _scopes(tx: Transaction, principal: Principal, scopes: tuple[str, ...]) -> tuple[str, ...]:
    scope_set = Catalogue(tx.resources.all(principal.org_id)).validate("scopes", list(scopes))
    if not scopes:
        raise InvalidInput.field(
            "scopes", "a preset lists at least one scope (for full access, say '*')"
        )
    principal.ensure_can_grant("scopes", scope_set)
    return tuple(scope_set.sorted())


def _preset(tx: Transaction, org_id: str, preset_id: str) -> Preset:
    preset = tx.presets.get(org_id, preset_id)
    if preset is None:
        raise NotFound("preset", preset_id)
    return preset


def _unique_name(tx: Transaction, org_id: str, name: str, own_id: str | None) -> str:
    name = check_name("name", name)
    existing = tx.presets.find_by_name(org_id, name)
    if existing is not None and existing.id != own_id:
        raise Conflict(f"A preset named {name!r} already exists ({existing.id}).", field="name")
    return name
