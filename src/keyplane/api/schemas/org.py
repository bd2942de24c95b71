"""Request and response bodies: org."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field, StrictBool, StrictInt

from keyplane.api.schemas.common import Name, Omit, Request
from keyplane.api.schemas.limits import RATELIMITS_DOC, RATELIMITS_MAX, RateLimitIn, RateLimitOut
from keyplane.api.schemas.routes import ROUTE_TABLE_DOC, RouteIn, RouteOut
from keyplane.domain.limits import (
    EXPIRES_IN_DAYS_MAX,
    RETENTION_DAYS_MAX,
    ROTATION_PERIOD_DAYS_MAX,
    WARNING_THRESHOLDS_MAX,
)
from keyplane.domain.models import Organization
from keyplane.domain.routes import ROUTES_MAX


class OrgUpdate(Request):
    name: Omit[Name] = None
    require_explicit_scopes: Omit[StrictBool] = None
    max_key_lifetime_days: StrictInt | None = Field(default=None, ge=1, le=EXPIRES_IN_DAYS_MAX)
    expired_key_retention_days: Omit[StrictInt] = Field(
        default=None,
        ge=0,
        le=RETENTION_DAYS_MAX,
        description="Days an expired key stays listed (status EXPIRED) before it is purged.",
    )
    expiry_warning_days: Omit[list[StrictInt]] = Field(
        default=None,
        max_length=WARNING_THRESHOLDS_MAX,
        description=(
            "Days before a key's expiry at which a warning fires (webhook key.expiring, and "
            "email), distinct, each 1 to 365; [] turns warnings off. Stored largest first."
        ),
    )
    rotation_period_days: StrictInt | None = Field(
        default=None,
        ge=1,
        le=ROTATION_PERIOD_DAYS_MAX,
        description="Age in days after which a key is due for rotation (key.rotation_due).",
    )
    ratelimits: Omit[list[RateLimitIn]] = Field(
        default=None,
        max_length=RATELIMITS_MAX,
        description="Defaults for every key of the organization. " + RATELIMITS_DOC,
    )
    leaked_key_action: Omit[Literal["disable", "delete"]] = Field(
        default=None,
        description=(
            "What a key reported leaked (POST /v1/keys/leaked, GitHub secret scanning) "
            "becomes while still usable: disabled (the default: it can be re-enabled) or "
            "deleted for good. Either way the organization is warned (webhook key.leaked, "
            "and email to owners and admins)."
        ),
    )
    route_table: Omit[list[RouteIn]] = Field(
        default=None, max_length=ROUTES_MAX, description=ROUTE_TABLE_DOC
    )


class OrgOut(BaseModel):
    id: str
    name: str
    require_explicit_scopes: bool
    max_key_lifetime_days: int | None
    expired_key_retention_days: int
    expiry_warning_days: list[int]
    rotation_period_days: int | None
    created_at: datetime
    updated_at: datetime
    ratelimits: list[RateLimitOut]
    leaked_key_action: Literal["disable", "delete"]
    route_table: list[RouteOut] = Field(description=ROUTE_TABLE_DOC)

    @classmethod
    def of(cls, org: Organization) -> OrgOut:
        return cls(
            id=org.id,
            name=org.name,
            require_explicit_scopes=org.require_explicit_scopes,
            max_key_lifetime_days=org.max_key_lifetime_days,
            expired_key_retention_days=org.expired_key_retention_days,
            expiry_warning_days=list(org.expiry_warning_days),
            rotation_period_days=org.rotation_period_days,
            created_at=org.created_at,
            updated_at=org.updated_at,
            ratelimits=[RateLimitOut.of(r) for r in org.ratelimits],
            leaked_key_action=org.leaked_key_action,
            route_table=[RouteOut.of(r) for r in org.route_table],
        )
