"""Request and response bodies: keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field, StrictInt, model_validator
from pydantic_core import PydanticCustomError

from keyplane.api.schemas.common import Description, Name, Omit, Request, Scope
from keyplane.api.schemas.limits import (
    ALLOWLIST_DOC,
    ALLOWLIST_MAX,
    RATELIMITS_DOC,
    RATELIMITS_MAX,
    QuotaIn,
    QuotaOut,
    QuotaUpdate,
    RateLimitIn,
    RateLimitOut,
    RateLimitState,
    states,
)
from keyplane.api.schemas.presets import PRESET_FIELD_DOC, PresetRef
from keyplane.domain.delegation import CHILD_EXPIRES_IN_MAX, CHILD_LIFETIME_MAX
from keyplane.domain.limits import (
    EXPIRES_IN_DAYS_MAX,
    EXPIRES_IN_DAYS_MIN,
)
from keyplane.services.keys import IssuedKey, KeyView
from keyplane.services.rotation import GRACE_DEFAULT_SECONDS, GRACE_MAX_SECONDS


class KeyCreate(Request):
    name: Name
    description: Description = ""
    scopes: list[Scope] = Field(
        default_factory=list,
        description="Own scopes. None gives full access (or, in an app, the app's scopes), "
        "unless the organization requires explicit scopes.",
    )
    app_id: str | None = None
    expires_at: AwareDatetime | None = Field(default=None, description="RFC 3339, in the future.")
    expires_in_days: StrictInt | None = Field(
        default=None, ge=EXPIRES_IN_DAYS_MIN, le=EXPIRES_IN_DAYS_MAX
    )
    profile_id: str | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON object up to 4 KB."
    )
    environment: Literal["live", "test"] = "live"
    ratelimits: list[RateLimitIn] = Field(
        default_factory=list, max_length=RATELIMITS_MAX, description=RATELIMITS_DOC
    )
    quota: QuotaIn | None = Field(
        default=None,
        description="Uses left (each verification spends its cost); at 0 the key answers "
        "USAGE_EXCEEDED until a refill sets it back to the refill's amount.",
    )
    ip_allowlist: list[str] = Field(
        default_factory=list, max_length=ALLOWLIST_MAX, description=ALLOWLIST_DOC
    )
    preset: str | None = Field(default=None, max_length=100, description=PRESET_FIELD_DOC)


IMMUTABLE_KEY_FIELDS = ("name", "scopes", "app_id", "key", "client_secret", "secret", "environment")


class KeyUpdate(Request):
    status: Omit[Literal["active", "inactive"]] = None
    profile_id: str | None = None
    description: Omit[Description] = None
    metadata: Omit[dict[str, Any]] = None
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="May only move earlier, or later within the organization's maximum lifetime.",
    )
    ratelimits: Omit[list[RateLimitIn]] = Field(
        default=None, max_length=RATELIMITS_MAX, description=RATELIMITS_DOC
    )
    quota: QuotaUpdate | None = Field(
        default=None,
        description="{remaining, refill} replaces the quota (without refill: keeps the "
        "current one); {add: n} adds n to what remains; null removes the quota.",
    )
    ip_allowlist: Omit[list[str]] = Field(
        default=None, max_length=ALLOWLIST_MAX, description=ALLOWLIST_DOC
    )

    @model_validator(mode="before")
    @classmethod
    def _refuse_immutable(cls, data: Any) -> Any:
        if isinstance(data, dict):
            present = [f for f in IMMUTABLE_KEY_FIELDS if f in data]
            if present:
                raise PydanticCustomError(
                    "immutable", "{fields} cannot change after creation", {"fields": present}
                )
        return data


class KeyOut(BaseModel):
    id: str
    name: str
    description: str
    client_id: str = Field(description="The key id; with the full key as secret, an OAuth2 client.")
    masked_key: str
    scopes: list[str] = Field(description="The key's own scopes, as created.")
    effective_scopes: list[str] = Field(
        description="What the key may do now (app scopes included)."
    )
    full_access: bool
    status: Literal["active", "inactive", "expired"]
    app_id: str | None
    profile_id: str | None
    metadata: dict[str, Any]
    environment: Literal["live", "test"]
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    last_used_at: datetime | None
    rotated_from: str | None = Field(description="The key this one replaced by rotation.")
    rotated_to: str | None = Field(
        description="The key that replaced this one; it verifies until expires_at (its grace)."
    )
    rotated_at: datetime | None
    verifications_since_rotation: int | None = Field(
        description="Verifications this key answered since it was rotated (null until then); "
        "written in batches, so a second or so behind."
    )
    ratelimits: list[RateLimitOut] = Field(description="The key's own rate limits.")
    quota: QuotaOut | None
    ip_allowlist: list[str]
    parent_id: str | None = Field(
        description="The key that created this one (POST /v1/keys/{key_id}/children); null "
        "for a key created otherwise. Disabling, deleting or expiring it stops this key too."
    )
    depth: int = Field(description="Keys above this one: 0 for a root key, 1 for a child, …")
    current_ratelimits: list[RateLimitState] | None = Field(
        default=None,
        description="Single-key reads: every limit that applies (organization and app "
        "defaults included) with what remains now; null in lists.",
    )

    @classmethod
    def of(cls, view: KeyView) -> KeyOut:
        key = view.key
        return cls(
            id=key.id,
            name=key.name,
            description=key.description,
            client_id=key.id,
            masked_key=key.masked_key,
            scopes=list(key.scopes),
            effective_scopes=view.effective.sorted(),
            full_access=view.effective.is_full_access,
            status=view.status,
            app_id=key.app_id,
            profile_id=key.profile_id,
            metadata=key.metadata,
            environment=key.environment,
            created_at=key.created_at,
            created_by=key.created_by,
            expires_at=key.expires_at,
            last_used_at=key.last_used_at,
            rotated_from=key.rotated_from,
            rotated_to=key.rotated_to,
            rotated_at=key.rotated_at,
            verifications_since_rotation=(
                key.uses_since_rotation if key.rotated_at is not None else None
            ),
            ratelimits=[RateLimitOut.of(r) for r in key.ratelimits],
            quota=QuotaOut.of(key.quota, view.limits),
            ip_allowlist=list(key.ip_allowlist),
            parent_id=key.parent_id,
            depth=key.depth,
            current_ratelimits=(
                [RateLimitState.model_validate(s) for s in states(view.limits)]
                if view.limits is not None
                else None
            ),
        )


class KeyChildCreate(Request):
    name: Name
    description: Description = ""
    scopes: Omit[list[Scope]] = Field(
        default=None,
        description="A subset of the parent's effective scopes (its app's count). Left "
        "out: all of them.",
    )
    expires_at: AwareDatetime | None = Field(
        default=None,
        description="RFC 3339, in the future, no later than the parent's expiry and at most "
        f"{CHILD_LIFETIME_MAX.days} days from now.",
    )
    expires_in: StrictInt | None = Field(
        default=None,
        ge=1,
        le=CHILD_EXPIRES_IN_MAX,
        description="Seconds from now, instead of expires_at. Neither: one hour (or the "
        "parent's expiry, if sooner).",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON object up to 4 KB."
    )
    ratelimits: Omit[list[RateLimitIn]] = Field(
        default=None,
        max_length=RATELIMITS_MAX,
        description="No looser than the parent's: every limit the parent is held to, by "
        "name, with no larger burst (limit) and no faster rate (limit / period_seconds). "
        "Left out: the parent's own.",
    )
    quota: QuotaIn | None = Field(
        default=None,
        description="When the parent has a quota: at most its remaining uses, with a refill "
        "no more generous. Left out: the parent's as it stands now.",
    )


class KeyRotate(Request):
    grace_period_seconds: StrictInt = Field(
        default=GRACE_DEFAULT_SECONDS,
        ge=0,
        le=GRACE_MAX_SECONDS,
        description="How long the old key keeps verifying (at most 30 days; 0 ends it now).",
    )


class KeyCreated(KeyOut):
    key: str = Field(description="The full key. Shown in this response only, never again.")
    client_secret: str = Field(description="The same full key, named as an OAuth2 client secret.")
    warning: str
    preset: PresetRef | None = Field(
        default=None,
        description="The preset the key's scopes were copied from (named in this answer and "
        "the audit event only: the key keeps no link to it).",
    )

    @classmethod
    def of_issued(cls, issued: IssuedKey) -> KeyCreated:
        base = KeyOut.of(issued.view).model_dump()
        warning = "Store this key now: it cannot be shown again."
        if issued.view.effective.is_full_access:
            warning += " It has FULL ACCESS: no scopes were given, so it may do everything."
        return cls(
            **base,
            key=issued.secret,
            client_secret=issued.secret,
            warning=warning,
            preset=PresetRef.of(issued.preset),
        )
