"""Response bodies: usage analytics."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from keyplane.domain.usage import Granularity, KeyUsage, UsagePoint, UsageRange

_COUNTS = (
    "Answers by outcome code, as verification gives them (`VALID`, `NOT_FOUND`, `EXPIRED`, "
    "`DISABLED`, `INSUFFICIENT_SCOPE`); for key-authenticated API calls the outcome of "
    "authentication. Outcomes with no answers are left out."
)


class UsagePointOut(BaseModel):
    start: datetime = Field(description="Start of the bucket (UTC).")
    counts: dict[str, int] = Field(description=_COUNTS, examples=[{"VALID": 7}])

    @classmethod
    def of(cls, point: UsagePoint) -> UsagePointOut:
        return cls(start=point.start, counts=point.counts)


class UsageSeries(BaseModel):
    granularity: Granularity
    start: datetime = Field(
        serialization_alias="from", description="`from`, rounded down to its bucket."
    )
    end: datetime = Field(serialization_alias="to")
    key_id: str | None
    app_id: str | None
    data: list[UsagePointOut] = Field(description="Every bucket of the range, oldest first.")

    @classmethod
    def of(
        cls,
        span: UsageRange,
        points: list[UsagePoint],
        key_id: str | None,
        app_id: str | None,
    ) -> UsageSeries:
        return cls(
            granularity=span.granularity,
            start=span.start,
            end=span.end,
            key_id=key_id,
            app_id=app_id,
            data=[UsagePointOut.of(p) for p in points],
        )


class KeyUsageOut(BaseModel):
    key_id: str
    app_id: str | None
    total: int
    counts: dict[str, int] = Field(description=_COUNTS)

    @classmethod
    def of(cls, usage: KeyUsage) -> KeyUsageOut:
        return cls(key_id=usage.key_id, app_id=usage.app_id, total=usage.total, counts=usage.counts)


class TopKeys(BaseModel):
    granularity: Granularity
    start: datetime = Field(serialization_alias="from")
    end: datetime = Field(serialization_alias="to")
    data: list[KeyUsageOut] = Field(description="Busiest first.")

    @classmethod
    def of(cls, span: UsageRange, keys: list[KeyUsage]) -> TopKeys:
        return cls(
            granularity=span.granularity,
            start=span.start,
            end=span.end,
            data=[KeyUsageOut.of(k) for k in keys],
        )
