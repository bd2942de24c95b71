"""Request and response bodies: apps."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Description, Name, Omit, Request, Scope
from keyplane.api.schemas.limits import RATELIMITS_DOC, RATELIMITS_MAX, RateLimitIn, RateLimitOut
from keyplane.api.schemas.presets import PRESET_FIELD_DOC
from keyplane.domain.models import App


class AppCreate(Request):
    name: Name
    description: Description = ""
    scopes: list[Scope] = Field(default_factory=list, description="Empty means full access.")
    ratelimits: list[RateLimitIn] = Field(
        default_factory=list,
        max_length=RATELIMITS_MAX,
        description="Defaults for the app's keys. " + RATELIMITS_DOC,
    )
    preset: str | None = Field(default=None, max_length=100, description=PRESET_FIELD_DOC)


class AppUpdate(Request):
    name: Omit[Name] = None
    description: Omit[Description] = None
    scopes: Omit[list[Scope]] = Field(
        default=None, description="Applies to every key of the app at once."
    )
    ratelimits: Omit[list[RateLimitIn]] = Field(
        default=None,
        max_length=RATELIMITS_MAX,
        description="Defaults for the app's keys. " + RATELIMITS_DOC,
    )


class AppOut(BaseModel):
    id: str
    name: str
    description: str
    scopes: list[str]
    full_access: bool
    key_count: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    ratelimits: list[RateLimitOut]

    @classmethod
    def of(cls, app: App) -> AppOut:
        return cls(
            id=app.id,
            name=app.name,
            description=app.description,
            scopes=list(app.scopes),
            full_access=app.scope_set.is_full_access,
            key_count=app.key_count,
            created_by=app.created_by,
            created_at=app.created_at,
            updated_at=app.updated_at,
            ratelimits=[RateLimitOut.of(r) for r in app.ratelimits],
        )
