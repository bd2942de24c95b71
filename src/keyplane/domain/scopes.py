"""The scope grammar and algebra.

A scope is ``resource:action``; ``resource:*`` is every action on a resource (including
actions added later); ``*`` is full access. A set of scopes *covers* a scope when it holds
``*``, the scope itself, or its resource's wildcard. Wildcards are only covered by
wildcards at least as wide: holding ``models:read``, ``models:write`` and ``models:delete``
does not cover ``models:*``, because ``models:*`` also grants actions added tomorrow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

FULL_ACCESS: Final = "*"
NAME_PATTERN: Final = r"[a-z][a-z0-9_]{0,39}"
ACTION_PATTERN: Final = r"[a-z][a-z0-9_-]{0,39}"
_SCOPE = re.compile(rf"(?P<resource>{NAME_PATTERN}):(?P<action>{ACTION_PATTERN}|\*)")
RESOURCE_NAME = re.compile(NAME_PATTERN)
ACTION_NAME = re.compile(ACTION_PATTERN)


class InvalidScope(ValueError):
    """A string that is not ``resource:action``, ``resource:*`` or ``*``."""

    def __init__(self, scope: str) -> None:
        super().__init__(
            f"{scope!r} is not a scope: expected 'resource:action', 'resource:*' or '*'"
        )
        self.scope = scope


def parse_scope(scope: str) -> tuple[str, str] | None:
    """``(resource, action)``; ``("*", "*")`` for full access; raises InvalidScope."""
    if scope == FULL_ACCESS:
        return None
    match = _SCOPE.fullmatch(scope)
    if match is None:
        raise InvalidScope(scope)
    return match["resource"], match["action"]


@dataclass(frozen=True, slots=True)
class ScopeSet:
    """An immutable, normalised set of scopes (nothing in it covered by something else)."""

    scopes: frozenset[str]

    @classmethod
    def of(cls, scopes: Iterable[str]) -> ScopeSet:
        items = set(scopes)
        for scope in items:
            parse_scope(scope)
        return cls(_normalise(items))

    @classmethod
    def full(cls) -> ScopeSet:
        return cls(frozenset({FULL_ACCESS}))

    @property
    def is_full_access(self) -> bool:
        return FULL_ACCESS in self.scopes

    def covers(self, scope: str) -> bool:
        """Whether this set grants ``scope`` (hot path: string operations only)."""
        held = self.scopes
        if FULL_ACCESS in held or scope in held:
            return True
        if scope == FULL_ACCESS:
            return False
        resource = scope.partition(":")[0]
        return f"{resource}:*" in held

    def covers_all(self, scopes: Iterable[str]) -> bool:
        return all(self.covers(scope) for scope in scopes)

    def missing(self, scopes: Iterable[str]) -> list[str]:
        return [scope for scope in scopes if not self.covers(scope)]

    def issubset(self, other: ScopeSet) -> bool:
        """Whether everything this set grants is granted by ``other`` (no escalation)."""
        return all(other.covers(scope) for scope in self.scopes)

    def intersect(self, other: ScopeSet) -> ScopeSet:
        """What both sets grant: ``covers(a ∩ b, s) == covers(a, s) and covers(b, s)``."""
        both = {s for s in self.scopes if other.covers(s)}
        both |= {s for s in other.scopes if self.covers(s)}
        return ScopeSet(_normalise(both))

    def sorted(self) -> list[str]:
        return sorted(self.scopes)


def _normalise(scopes: set[str]) -> frozenset[str]:
    if FULL_ACCESS in scopes:
        return frozenset({FULL_ACCESS})
    wildcards = {s.partition(":")[0] for s in scopes if s.endswith(":*")}
    return frozenset(s for s in scopes if s.endswith(":*") or s.partition(":")[0] not in wildcards)
