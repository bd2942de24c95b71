"""Request and response bodies: rate limits, quotas and allowlists (domain/ratelimits.py).

The shapes are checked here; the domain checks again (names unique, refill rules) with
messages that name the field, as ``ratelimits[1].period_seconds``.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, Field, StrictInt

from keyplane.api.schemas.common import Request
from keyplane.domain.ratelimits import (
    ALLOWLIST_MAX,
    NAME_PATTERN,
    PERIOD_SECONDS_MAX,
    QUOTA_MAX,
    RATELIMIT_LIMIT_MAX,
    RATELIMITS_MAX,
    Admission,
    Quota,
    RateLimit,
)


class RateLimitIn(Request):
    name: str = Field(
        min_length=1, max_length=40, pattern=NAME_PATTERN, examples=["burst", "daily"]
    )
    limit: StrictInt = Field(ge=1, le=RATELIMIT_LIMIT_MAX, description="Uses per period.")
    period_seconds: StrictInt = Field(ge=1, le=PERIOD_SECONDS_MAX)


RATELIMITS_DOC = (
    "Named rate limits (GCRA: a full burst of `limit`, then one more every "
    "`period_seconds / limit`; no double burst at window edges). By name, a key's limit "
    "overrides its app's, which overrides the organization's. Names are unique."
)


class RefillIn(Request):
    amount: StrictInt = Field(ge=1, le=QUOTA_MAX, description="What a refill sets remaining to.")
    interval: Literal["daily", "monthly"] = Field(
        description="Daily at 00:00 UTC, or monthly at 00:00 UTC on day_of_month."
    )
    day_of_month: StrictInt = Field(
        default=1, ge=1, le=31, description="Monthly only; clamped to the month's last day."
    )


class QuotaIn(Request):
    remaining: StrictInt | None = Field(
        default=None, ge=0, le=QUOTA_MAX, description="Defaults to the refill's amount."
    )
    refill: RefillIn | None = None


class QuotaUpdate(QuotaIn):
    add: StrictInt | None = Field(
        default=None,
        ge=1,
        le=QUOTA_MAX,
        description="Add to what remains (alone; the other fields replace the quota).",
    )


ALLOWLIST_DOC = (
    "IPv4/IPv6 addresses and CIDR ranges. When not empty, a verification from any other "
    "address (or without `ip`) answers IP_FORBIDDEN, and the API refuses this key's calls "
    "from elsewhere."
)


class RefillOut(BaseModel):
    amount: int
    interval: Literal["daily", "monthly"]
    day_of_month: int


class QuotaOut(BaseModel):
    remaining: int = Field(description="Live on single-key reads; in lists as last written.")
    refill: RefillOut | None

    @classmethod
    def of(cls, quota: Quota | None, live: Admission | None) -> QuotaOut | None:
        if quota is None:
            return None
        remaining = quota.remaining
        if live is not None and live.quota_remaining is not None:
            remaining = live.quota_remaining
        refill = quota.refill
        return cls(
            remaining=remaining,
            refill=RefillOut(
                amount=refill.amount, interval=refill.interval, day_of_month=refill.day_of_month
            )
            if refill
            else None,
        )


class RateLimitOut(BaseModel):
    name: str
    limit: int
    period_seconds: int

    @classmethod
    def of(cls, limit: RateLimit) -> RateLimitOut:
        return cls(name=limit.name, limit=limit.limit, period_seconds=limit.period_seconds)


class RateLimitState(BaseModel):
    name: str
    limit: int
    remaining: int
    reset_seconds: int = Field(description="Seconds until the limit is whole again.")
    reset_at: datetime


class QuotaState(BaseModel):
    remaining: int


def states(admission: Admission) -> list[dict[str, object]]:
    """The numbers of each rate limit after a check, as verification and key reads show them.

    On every verification of a limited key, so written for CPython's sake: ``timedelta``
    with positional arguments (its keyword parsing costs more than the addition)."""
    at = admission.at
    out: list[dict[str, object]] = []
    for state in admission.limits:
        limit = state.limit
        reset = state.reset_seconds
        out.append(
            {
                "name": limit.name,
                "limit": limit.limit,
                "remaining": state.remaining,
                "reset_seconds": math.ceil(reset),
                "reset_at": at + timedelta(0, reset) if at else None,
            }
        )
    return out


__all__ = [
    "ALLOWLIST_DOC",
    "ALLOWLIST_MAX",
    "RATELIMITS_DOC",
    "RATELIMITS_MAX",
    "QuotaIn",
    "QuotaOut",
    "QuotaState",
    "QuotaUpdate",
    "RateLimitIn",
    "RateLimitOut",
    "RateLimitState",
    "RefillIn",
    "states",
]
