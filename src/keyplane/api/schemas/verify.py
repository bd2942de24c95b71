"""Request and response bodies: verify."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from keyplane.api.schemas.common import Request, Scope


class VerifyRequest(Request):
    key: str = Field(description="The key a client presented to your service.")
    scopes: list[Scope] = Field(default_factory=list, description="May the key do all of these?")
    ip: str | None = Field(
        default=None, description="The client's address (recorded, not yet enforced)."
    )


class VerifiedProfile(BaseModel):
    id: str
    name: str
    settings: dict[str, Any]


class VerifyResponse(BaseModel):
    valid: bool
    code: Literal["VALID", "NOT_FOUND", "EXPIRED", "DISABLED", "INSUFFICIENT_SCOPE"]
    key_id: str | None = None
    app_id: str | None = None
    scopes: list[str] = Field(default_factory=list, description="The key's effective scopes.")
    missing_scopes: list[str] = Field(default_factory=list)
    profile: VerifiedProfile | None = None
    metadata: dict[str, Any] | None = None
    environment: Literal["live", "test"] | None = None
    expires_at: datetime | None = None
