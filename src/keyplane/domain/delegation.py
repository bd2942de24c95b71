"""Delegated keys: what a key may hand on to a child it creates with its own authority.

A child is never more than its parent, in every dimension a verification checks:

- scopes: a subset of the parent's *effective* scopes (its app's count; ``domain/scopes.py``
  decides what "subset" means for wildcards). Unspecified: all of them.
- expiry: at most ``CHILD_LIFETIME_MAX`` from now and never after the parent's expiry.
  Unspecified: ``CHILD_LIFETIME_DEFAULT`` (one hour), or the parent's expiry if sooner.
- rate limits: every named limit the parent is held to (its effective limits: org, app
  and its own merged by name) holds the child too, under the same name, no looser. A
  GCRA limit ``L per P seconds`` admits a burst of ``L`` and then ``L / P`` a second, so
  "no looser" is both: ``child.limit <= parent.limit`` (burst) and ``child.limit / child.P
  <= parent.limit / parent.P`` (sustained rate, compared by cross-multiplication, exactly).
  The child may add limits of other names. Unspecified: the parent's own.
- quota: when the parent has one, the child must have one: ``remaining`` no more than the
  parent's remaining now, and a refill no more generous (none when the parent's has none;
  otherwise an amount no larger, on the same or a longer interval, daily < monthly).
  Unspecified: the parent's, as it stands now.
- depth: a root key has depth 0, its child 1, a grandchild 2; a key at the configured
  maximum depth cannot delegate.

What is given up: a child counts its rate limits and quota on its own, not against its
parent's, so a parent with many children can see more traffic in total than its own limits
admit. Each child is bounded; their sum is not (sharing counters would put a second
limiter check on every child's verification). Bound the total with the parent's expiry and
by disabling the parent, which stops every descendant at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final

from keyplane.domain.errors import Escalation, FieldError, Forbidden, InvalidInput
from keyplane.domain.ratelimits import Quota, RateLimit, Refill
from keyplane.domain.scopes import ScopeSet

CHILD_LIFETIME_DEFAULT: Final = timedelta(hours=1)
CHILD_LIFETIME_MAX: Final = timedelta(days=30)
CHILD_EXPIRES_IN_MAX: Final = int(CHILD_LIFETIME_MAX.total_seconds())
MAX_DEPTH_DEFAULT: Final = 2
_INTERVAL_LENGTH: Final = {"daily": 1, "monthly": 2}


class NotTheKey(Forbidden):
    """Only a key itself creates its children: holding the key is the authority."""

    def __init__(self, key_id: str) -> None:
        super().__init__(
            f"Only the key {key_id!r} itself can create its children: call this operation "
            "with that key as the Bearer credential."
        )
        self.key_id = key_id


class DepthExceeded(Forbidden):
    """The parent is as deep as delegation goes (KEYPLANE_MAX_KEY_DEPTH)."""

    def __init__(self, key_id: str, depth: int, max_depth: int) -> None:
        super().__init__(
            f"The key {key_id!r} is at delegation depth {depth} and this server allows at "
            f"most {max_depth} (KEYPLANE_MAX_KEY_DEPTH): it cannot create children."
        )
        self.depth = depth
        self.max_depth = max_depth


def check_depth(key_id: str, parent_depth: int, max_depth: int) -> int:
    """The child's depth, or DepthExceeded."""
    if parent_depth + 1 > max_depth:
        raise DepthExceeded(key_id, parent_depth, max_depth)
    return parent_depth + 1


def child_scopes(requested: ScopeSet | None, parent: ScopeSet) -> ScopeSet:
    """The child's scopes: ``requested`` when the parent's effective scopes cover it (else
    Escalation naming the excess), the parent's when not given."""
    if requested is None:
        return parent
    if not requested.issubset(parent):
        raise Escalation("scopes", sorted(s for s in requested.scopes if not parent.covers(s)))
    return requested


def child_expiry(
    now: datetime,
    parent_expires_at: datetime | None,
    *,
    expires_at: datetime | None = None,
    expires_in: int | None = None,
) -> datetime:
    """When the child expires: as asked (an instant or seconds from now), within the
    maximum lifetime and the parent's expiry; by default an hour, or the parent's expiry
    when that is sooner."""
    if expires_at is not None and expires_in is not None:
        raise InvalidInput.field("expires_in", "give either expires_at or expires_in, not both")
    field = "expires_in" if expires_in is not None else "expires_at"
    if expires_in is not None:
        if not 1 <= expires_in <= CHILD_EXPIRES_IN_MAX:
            raise InvalidInput.field(field, f"must be between 1 and {CHILD_EXPIRES_IN_MAX} seconds")
        expires_at = now + timedelta(seconds=expires_in)
    if expires_at is None:
        default = now + CHILD_LIFETIME_DEFAULT
        return default if parent_expires_at is None else min(default, parent_expires_at)
    if expires_at.tzinfo is None:
        raise InvalidInput.field(field, "must include a time zone offset (RFC 3339)")
    if expires_at <= now:
        raise InvalidInput.field(field, "must be in the future")
    if expires_at > now + CHILD_LIFETIME_MAX:
        raise InvalidInput.field(
            field, f"a delegated key lives at most {CHILD_LIFETIME_MAX.days} days"
        )
    if parent_expires_at is not None and expires_at > parent_expires_at:
        raise InvalidInput.field(
            field, f"must not be after the parent key's expiry ({parent_expires_at.isoformat()})"
        )
    return expires_at


def limit_no_looser(child: RateLimit, parent: RateLimit) -> bool:
    """``child`` admits no larger burst and no faster sustained rate than ``parent``."""
    return (
        child.limit <= parent.limit
        and child.limit * parent.period_seconds <= parent.limit * child.period_seconds
    )


def looser_ratelimits(child: Sequence[RateLimit], parent: Sequence[RateLimit]) -> list[FieldError]:
    """Why the child's effective limits are looser than the parent's (empty: they are not).
    Both are effective limits (merged by name); each error names the parent's limit."""
    by_name = {limit.name: limit for limit in child}
    errors = []
    for held in parent:
        mine = by_name.get(held.name)
        shown = f"{held.limit} per {held.period_seconds} s"
        if mine is None:
            errors.append(
                FieldError("ratelimits", f"must keep the parent's limit {held.name!r} ({shown})")
            )
        elif not limit_no_looser(mine, held):
            errors.append(
                FieldError(
                    "ratelimits",
                    f"{held.name!r} must be no looser than the parent's {shown}: a burst of "
                    f"at most {held.limit} and no faster rate",
                )
            )
    return errors


def refill_no_looser(child: Refill | None, parent: Refill | None) -> bool:
    if child is None:
        return True
    if parent is None:
        return False
    return (
        child.amount <= parent.amount
        and _INTERVAL_LENGTH[child.interval] >= _INTERVAL_LENGTH[parent.interval]
    )


def looser_quota(child: Quota | None, parent: Quota | None) -> list[FieldError]:
    """Why the child's quota is looser than the parent's (``parent`` as it stands now)."""
    if parent is None:
        return []
    if child is None:
        return [FieldError("quota", "the parent key has a quota: the child needs one too")]
    errors = []
    if child.remaining > parent.remaining:
        errors.append(
            FieldError(
                "quota.remaining", f"must be at most the parent's remaining {parent.remaining}"
            )
        )
    if not refill_no_looser(child.refill, parent.refill):
        errors.append(
            FieldError(
                "quota.refill",
                "must be no more generous than the parent's: none when it has none, else an "
                "amount no larger on the same or a longer interval",
            )
        )
    return errors
