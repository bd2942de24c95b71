"""What the guard hands a route: the verified key (:class:`VerifiedKey`), and the
RateLimit headers of its limits in keyplane's own format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any

from keyplane_client._models import QuotaState, RateLimitState, Verdict, VerifiedProfile


@dataclass(frozen=True, slots=True)
class VerifiedKey:
    """A key keyplane found valid for the scopes a route requires.

    ``ratelimits`` and ``quota`` are the key's state after this request was counted (empty
    and None for a key without limits: only such keys are answered from the guard's cache,
    so a key with limits is always counted by keyplane). ``metadata`` is read-only: one
    cached object serves many requests."""

    id: str
    app_id: str | None
    scopes: tuple[str, ...]
    profile: VerifiedProfile | None
    metadata: Mapping[str, Any]
    environment: str | None
    expires_at: datetime | None
    ratelimits: tuple[RateLimitState, ...] = ()
    quota: QuotaState | None = None

    @classmethod
    def of(cls, verdict: Verdict) -> VerifiedKey:
        if not verdict.valid or verdict.key_id is None:
            raise ValueError("only a valid verdict describes a verified key")
        return cls(
            id=verdict.key_id,
            app_id=verdict.app_id,
            scopes=tuple(verdict.scopes),
            profile=verdict.profile,
            metadata=MappingProxyType(dict(verdict.metadata or {})),
            environment=verdict.environment,
            expires_at=verdict.expires_at,
            ratelimits=tuple(verdict.ratelimits),
            quota=verdict.quota,
        )

    @property
    def limited(self) -> bool:
        """Whether keyplane counts this key's requests (rate limits or a quota)."""
        return bool(self.ratelimits) or self.quota is not None

    def ids(self) -> tuple[str, ...]:
        """The ids whose change may change this verdict (what the event stream names)."""
        ids = [self.id]
        if self.app_id:
            ids.append(self.app_id)
        if self.profile is not None:
            ids.append(self.profile.id)
        return tuple(ids)


def ratelimit_headers(limits: tuple[RateLimitState, ...]) -> list[tuple[bytes, bytes]]:
    """``RateLimit-Policy`` and ``RateLimit`` as keyplane sends them
    (draft-ietf-httpapi-ratelimit-headers: one item per named limit, ``q`` its size,
    ``r`` what remains, ``t`` seconds until it is whole again). A verdict does not carry a
    limit's window, so the policy leaves out ``w`` (optional in the draft)."""
    if not limits:
        return []
    policy = ", ".join(f"{_sf_string(s.name)};q={s.limit}" for s in limits)
    current = ", ".join(f"{_sf_string(s.name)};r={s.remaining};t={s.reset_seconds}" for s in limits)
    return [(b"ratelimit-policy", policy.encode()), (b"ratelimit", current.encode())]


def _sf_string(name: str) -> str:
    """A structured-field string (RFC 8941 3.3.3); keyplane's names need no escaping, a
    newer server's might."""
    escaped = name.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c for c in escaped if " " <= c <= "~") + '"'
