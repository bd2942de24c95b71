"""Request and response bodies: profiles."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Description, Name, Omit, Request
from keyplane.domain.models import Profile


class ProfileCreate(Request):
    name: Name
    description: Description = ""
    settings: dict[str, Any] = Field(
        default_factory=dict, description="Any JSON object up to 16 KB."
    )


class ProfileUpdate(Request):
    name: Omit[Name] = None
    description: Omit[Description] = None
    settings: Omit[dict[str, Any]] = None


class ProfileOut(BaseModel):
    id: str
    name: str
    description: str
    settings: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, profile: Profile) -> ProfileOut:
        return cls(
            id=profile.id,
            name=profile.name,
            description=profile.description,
            settings=profile.settings,
            created_at=profile.created_at,
            updated_at=profile.updated_at,
        )
