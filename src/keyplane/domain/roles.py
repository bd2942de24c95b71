"""Console roles: named scope sets, checked with the same rules as keys.

    owner      everything, including ownership (``org:own``: making, demoting, removing owners)
    admin      everything but ownership
    developer  keys and apps read/write/delete, resources and profiles read, verify, and every
               custom resource (the organization's own API, which developers issue keys for)
    viewer     read everything, change nothing

Custom resources are part of the organization's catalogue, so roles are computed against it.
"""

from __future__ import annotations

from typing import Final, get_args

from keyplane.domain.catalogue import BUILTIN_RESOURCES, Catalogue
from keyplane.domain.models import Role
from keyplane.domain.scopes import ScopeSet

ROLES: Final[tuple[Role, ...]] = get_args(Role)
OWNERSHIP: Final = "org:own"


def role_scopes(role: Role, catalogue: Catalogue) -> ScopeSet:
    custom = [r for r in catalogue.all() if not r.builtin]
    if role == "owner":
        return ScopeSet.full()
    if role == "admin":
        scopes = [f"{name}:*" for name in BUILTIN_RESOURCES if name != "org"]
        scopes += ["org:read", "org:write"]
    elif role == "developer":
        scopes = ["api_keys:*", "apps:*", "resources:read", "profiles:read", "keys:verify"]
    else:
        scopes = [f"{r.name}:read" for r in catalogue.all() if "read" in r.actions]
        return ScopeSet.of(scopes)
    return ScopeSet.of(scopes + [f"{r.name}:*" for r in custom])
