"""The permission catalogue: built-in resources guarding keyplane's own API, plus an
organization's custom resources, and validation of scope lists against it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from keyplane.domain.errors import FieldError, InvalidInput
from keyplane.domain.limits import SCOPES_MAX
from keyplane.domain.scopes import InvalidScope, ScopeSet, parse_scope

DEFAULT_ACTIONS: Final = ("read", "write", "delete")


@dataclass(frozen=True, slots=True)
class Resource:
    name: str
    title: str
    description: str
    actions: tuple[str, ...]
    builtin: bool
    created_at: datetime | None = None
    updated_at: datetime | None = None


def _builtin(
    name: str, title: str, description: str, actions: Sequence[str] = DEFAULT_ACTIONS
) -> Resource:
    return Resource(name, title, description, tuple(actions), builtin=True)


BUILTIN_RESOURCES: Final[Mapping[str, Resource]] = {
    r.name: r
    for r in (
        _builtin(
            "api_keys", "API keys", "The keys that authenticate against your APIs and keyplane's."
        ),
        _builtin("apps", "Apps", "Groups of keys sharing one scope set."),
        _builtin("resources", "Resources", "The permission catalogue itself, and its presets."),
        _builtin(
            "profiles", "Profiles", "Named settings a key can carry to the services it calls."
        ),
        _builtin("users", "Users", "People who sign in to the console."),
        _builtin(
            "org",
            "Organization",
            "The organization's name and key policies; own: make, demote or remove owners.",
            ("read", "write", "own"),
        ),
        _builtin("audit", "Audit log", "The record of every action.", ("read",)),
        _builtin("analytics", "Analytics", "Usage of keys over time.", ("read",)),
        _builtin("webhooks", "Webhooks", "Notifications sent to your endpoints."),
        _builtin(
            "keys", "Verification", "Asking keyplane whether a presented key may act.", ("verify",)
        ),
    )
}


class Catalogue:
    """Built-ins plus an organization's custom resources."""

    def __init__(self, custom: Iterable[Resource]) -> None:
        self._resources = dict(BUILTIN_RESOURCES)
        for resource in custom:
            self._resources[resource.name] = resource

    def get(self, name: str) -> Resource | None:
        return self._resources.get(name)

    def all(self) -> list[Resource]:
        return sorted(self._resources.values(), key=lambda r: (not r.builtin, r.name))

    def validate(self, field: str, scopes: Sequence[str]) -> ScopeSet:
        """A ScopeSet, or InvalidInput naming each bad entry (``scopes[2]``) and why."""
        if len(scopes) > SCOPES_MAX:
            raise InvalidInput.field(field, f"at most {SCOPES_MAX} scopes")
        errors: list[FieldError] = []
        for index, scope in enumerate(scopes):
            where = f"{field}[{index}]"
            try:
                parsed = parse_scope(scope)
            except InvalidScope as exc:
                errors.append(FieldError(where, str(exc)))
                continue
            if parsed is None:
                continue
            resource_name, action = parsed
            resource = self._resources.get(resource_name)
            if resource is None:
                errors.append(FieldError(where, f"unknown resource {resource_name!r} in {scope!r}"))
            elif action != "*" and action not in resource.actions:
                known = ", ".join(resource.actions)
                errors.append(
                    FieldError(
                        where, f"unknown action {action!r} on {resource_name!r} (known: {known})"
                    )
                )
        if errors:
            raise InvalidInput(*errors)
        return ScopeSet.of(scopes)
