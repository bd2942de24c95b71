"""Request and response bodies: permission presets."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Description, Name, Omit, Request, Scope
from keyplane.domain.models import Preset

PRESET_FIELD_DOC = (
    "A preset's name or id, instead of `scopes` (never both): the new object gets its own "
    "copy of the preset's scopes, checked as if they were typed here."
)


class PresetCreate(Request):
    name: Name
    description: Description = ""
    scopes: list[Scope] = Field(
        min_length=1,
        description="At least one; checked against the catalogue. You must hold them.",
    )


class PresetUpdate(Request):
    name: Omit[Name] = None
    description: Omit[Description] = None
    scopes: Omit[list[Scope]] = Field(
        default=None,
        description="Reaches no existing key or app: they hold copies.",
    )


class PresetOut(BaseModel):
    id: str
    name: str
    description: str
    scopes: list[str]
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, preset: Preset) -> PresetOut:
        return cls(
            id=preset.id,
            name=preset.name,
            description=preset.description,
            scopes=list(preset.scopes),
            created_by=preset.created_by,
            created_at=preset.created_at,
            updated_at=preset.updated_at,
        )


class PresetRef(BaseModel):
    """The preset a key's scopes were copied from."""

    id: str
    name: str

    @classmethod
    def of(cls, preset: Preset | None) -> PresetRef | None:
        return cls(id=preset.id, name=preset.name) if preset is not None else None
