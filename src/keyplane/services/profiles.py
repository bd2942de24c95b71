"""Profiles: named settings a key carries to the services that verify it."""

from __future__ import annotations

from dataclasses import dataclass, replace

from keyplane.domain.errors import Conflict, NotFound
from keyplane.domain.ids import new_id
from keyplane.domain.limits import PROFILE_SETTINGS_MAX_BYTES
from keyplane.domain.models import JSONObject, Page, Profile
from keyplane.domain.ports import Clock, Store, Transaction
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_description,
    check_json_size,
    check_limit,
    check_name,
    diff,
    paginate,
    record,
)

IN_USE_LISTED = 10


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    name: str | _Unset = UNSET
    description: str | _Unset = UNSET
    settings: JSONObject | _Unset = UNSET


class ProfileService:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    def create(
        self,
        principal: Principal,
        name: str,
        description: str = "",
        settings: JSONObject | None = None,
    ) -> Profile:
        now = self._clock()
        with self._store.transaction() as tx:
            profile = Profile(
                id=new_id("prf"),
                org_id=principal.org_id,
                name=_unique_name(tx, principal.org_id, name, None),
                description=check_description(description),
                settings=check_json_size("settings", settings or {}, PROFILE_SETTINGS_MAX_BYTES),
                created_at=now,
                updated_at=now,
            )
            tx.profiles.insert(profile)
            record(tx, principal, now, "profile.create", "profile", profile.id, name=profile.name)
            return profile

    def get(self, principal: Principal, profile_id: str) -> Profile:
        with self._store.read() as tx:
            return _profile(tx, principal.org_id, profile_id)

    def page(self, principal: Principal, *, limit: int, cursor: str | None = None) -> Page[Profile]:
        check_limit(limit)
        after = check_cursor(cursor, "prf")
        with self._store.read() as tx:
            return paginate(
                lambda n: tx.profiles.page(principal.org_id, limit=n, after=after),
                limit,
                lambda p: p.id,
            )

    def update(self, principal: Principal, profile_id: str, changes: ProfileChanges) -> Profile:
        now = self._clock()
        with self._store.transaction() as tx:
            profile = _profile(tx, principal.org_id, profile_id)
            updated = profile
            if not isinstance(changes.name, _Unset):
                updated = replace(
                    updated, name=_unique_name(tx, profile.org_id, changes.name, profile.id)
                )
            if not isinstance(changes.description, _Unset):
                updated = replace(updated, description=check_description(changes.description))
            if not isinstance(changes.settings, _Unset):
                settings = check_json_size("settings", changes.settings, PROFILE_SETTINGS_MAX_BYTES)
                updated = replace(updated, settings=settings)
            updated = replace(updated, updated_at=now)
            tx.profiles.update(updated)
            record(
                tx,
                principal,
                now,
                "profile.update",
                "profile",
                profile.id,
                target_name=updated.name,
                changes=diff(profile, updated, ("name", "description", "settings")),
            )
            tx.invalidations.profile(profile_id, principal.org_id)
        return updated

    def delete(self, principal: Principal, profile_id: str) -> None:
        now = self._clock()
        with self._store.transaction() as tx:
            profile = _profile(tx, principal.org_id, profile_id)
            users = tx.keys.ids_with_profile(principal.org_id, profile_id, IN_USE_LISTED + 1)
            if users:
                listed = ", ".join(users[:IN_USE_LISTED]) + (
                    ", …" if len(users) > IN_USE_LISTED else ""
                )
                raise Conflict(
                    f"Profile {profile.name!r} is attached to keys ({listed}); "
                    "detach it from them before deleting it."
                )
            tx.profiles.delete(principal.org_id, profile_id)
            record(tx, principal, now, "profile.delete", "profile", profile.id, name=profile.name)
            tx.invalidations.profile(profile_id, principal.org_id)


def _profile(tx: Transaction, org_id: str, profile_id: str) -> Profile:
    profile = tx.profiles.get(org_id, profile_id)
    if profile is None:
        raise NotFound("profile", profile_id)
    return profile


def _unique_name(tx: Transaction, org_id: str, name: str, own_id: str | None) -> str:
    name = check_name("name", name)
    existing = tx.profiles.find_by_name(org_id, name)
    if existing is not None and existing.id != own_id:
        raise Conflict(f"A profile named {name!r} already exists ({existing.id}).", field="name")
    return name
