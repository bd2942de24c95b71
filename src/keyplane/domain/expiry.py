"""Expiry rules: the organization's lifecycle settings, which warning is due, and the badges.

A warning threshold ``t`` is due for a key whose expiry lies within ``t`` days; of several
thresholds only the smallest that covers the remaining time fires (with ``[7, 1]``, a key
first seen with three days left gets the 7-day warning now and the 1-day one later; a key
first seen with half a day left gets only the 1-day one), and a larger one never fires
after a smaller one for the same expiry. Each (key, expiry,
threshold) fires once: a changed expiry is a new expiry and is warned of again.

A key rotated out (``rotated_to`` set) gets neither warnings nor reminders: its expiry is the
end of its grace period, chosen at the rotation, and its successor is what to watch.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from keyplane.domain.errors import InvalidInput
from keyplane.domain.limits import (
    RETENTION_DAYS_MAX,
    ROTATION_PERIOD_DAYS_MAX,
    WARNING_DAYS_MAX,
    WARNING_THRESHOLDS_MAX,
)
from keyplane.domain.models import ApiKey, Organization


def check_retention_days(value: int) -> int:
    if isinstance(value, bool) or not 0 <= value <= RETENTION_DAYS_MAX:
        raise InvalidInput.field(
            "expired_key_retention_days", f"must be between 0 and {RETENTION_DAYS_MAX}"
        )
    return value


def check_warning_days(values: Sequence[int]) -> tuple[int, ...]:
    """Distinct whole days, largest first; ``[]`` turns warnings off."""
    field = "expiry_warning_days"
    if len(values) > WARNING_THRESHOLDS_MAX:
        raise InvalidInput.field(field, f"must have at most {WARNING_THRESHOLDS_MAX} thresholds")
    if any(isinstance(v, bool) or not 1 <= v <= WARNING_DAYS_MAX for v in values):
        raise InvalidInput.field(field, f"each threshold must be between 1 and {WARNING_DAYS_MAX}")
    if len(set(values)) != len(values):
        raise InvalidInput.field(field, "must not repeat a threshold")
    return tuple(sorted(values, reverse=True))


def check_rotation_period_days(value: int | None) -> int | None:
    maximum = ROTATION_PERIOD_DAYS_MAX
    if value is not None and (isinstance(value, bool) or not 1 <= value <= maximum):
        raise InvalidInput.field(
            "rotation_period_days", f"must be between 1 and {ROTATION_PERIOD_DAYS_MAX}, or null"
        )
    return value


def warning_bands(thresholds: Sequence[int], now: datetime) -> list[tuple[int, datetime, datetime]]:
    """For each threshold, smallest first, the expiries it is the due warning for:
    ``(days, after, until)``, expiries in ``(after, until]``."""
    bands = []
    after = now
    for days in sorted(thresholds):
        until = now + timedelta(days=days)
        bands.append((days, after, until))
        after = until
    return bands


def expires_soon(key: ApiKey, org: Organization, now: datetime) -> bool:
    """The console's "expires soon": unexpired, not rotated out, and within the org's first
    (largest) warning threshold."""
    if key.expires_at is None or key.rotated_to is not None or not org.expiry_warning_days:
        return False
    first = max(org.expiry_warning_days)
    return now < key.expires_at <= now + timedelta(days=first)


def rotation_due(key: ApiKey, org: Organization, now: datetime) -> bool:
    """The console's "rotation due": older than the rotation period, unexpired, not rotated."""
    period = org.rotation_period_days
    if period is None or key.rotated_to is not None or key.status(now) == "expired":
        return False
    return key.created_at <= now - timedelta(days=period)
