"""Request and response bodies: org."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field, StrictBool, StrictInt

from keyplane.api.schemas.common import Name, Omit, Request
from keyplane.domain.limits import (
    EXPIRES_IN_DAYS_MAX,
)
from keyplane.domain.models import Organization


class OrgUpdate(Request):
    name: Omit[Name] = None
    require_explicit_scopes: Omit[StrictBool] = None
    max_key_lifetime_days: StrictInt | None = Field(default=None, ge=1, le=EXPIRES_IN_DAYS_MAX)


class OrgOut(BaseModel):
    id: str
    name: str
    require_explicit_scopes: bool
    max_key_lifetime_days: int | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, org: Organization) -> OrgOut:
        return cls(
            id=org.id,
            name=org.name,
            require_explicit_scopes=org.require_explicit_scopes,
            max_key_lifetime_days=org.max_key_lifetime_days,
            created_at=org.created_at,
            updated_at=org.updated_at,
        )
