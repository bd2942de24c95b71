"""Request and response bodies: verify."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, StrictInt

from keyplane.api.schemas.common import Request, Scope
from keyplane.api.schemas.limits import QuotaState, RateLimitState
from keyplane.domain.ratelimits import COST_MAX
from keyplane.domain.verification import Code


class VerifyRequest(Request):
    key: str = Field(
        description="The key a client presented to your service, or an access token from "
        "POST /oauth/token (its key's verdict, narrowed to the token's scopes)."
    )
    scopes: list[Scope] = Field(default_factory=list, description="May the key do all of these?")
    ip: str | None = Field(
        default=None,
        description="The client's address; required by a key with an IP allowlist.",
    )
    cost: StrictInt = Field(
        default=1,
        ge=0,
        le=COST_MAX,
        description="What this use spends of the key's rate limits and quota (0: check only).",
    )


class VerifiedProfile(BaseModel):
    id: str
    name: str
    settings: dict[str, Any]


class VerifyResponse(BaseModel):
    valid: bool
    code: Code
    key_id: str | None = None
    app_id: str | None = None
    scopes: list[str] = Field(default_factory=list, description="The key's effective scopes.")
    missing_scopes: list[str] = Field(default_factory=list)
    profile: VerifiedProfile | None = None
    metadata: dict[str, Any] | None = None
    environment: Literal["live", "test"] | None = None
    expires_at: datetime | None = None
    ratelimits: list[RateLimitState] = Field(
        default_factory=list,
        description="Each rate limit of the key after this check (empty when the check "
        "did not get that far, or the key has none).",
    )
    quota: QuotaState | None = Field(
        default=None, description="What remains of the key's quota after this check."
    )
