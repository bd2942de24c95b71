"""API keys: lookups by id and digest, pages, batched last-used times."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Exists,
    Integer,
    Row,
    Select,
    and_,
    bindparam,
    case,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)

from keyplane.domain.models import (
    ApiKey,
    KeyStatus,
)
from keyplane.domain.ratelimits import Quota, ratelimits_json, ratelimits_of, refill_of
from keyplane.domain.tokens import Environment
from keyplane.storage.rows import fields as _fields
from keyplane.storage.scopes import grants_everything
from keyplane.storage.tables import (
    api_keys,
    apps,
    key_notices,
)


class SqlKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, key_id: str) -> ApiKey | None:
        query = select(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.id == key_id)
        row = self._conn.execute(query).first()
        return _key(row) if row else None

    def find_by_digest(self, digest: str) -> ApiKey | None:
        row = self._conn.execute(select(api_keys).where(api_keys.c.digest == digest)).first()
        return _key(row) if row else None

    def find_by_digests(self, digests: Sequence[str]) -> list[ApiKey]:
        """The keys with these digests, in any organization: one indexed query (a leak
        report holds up to 1,000 keys, most of them usually unknown)."""
        if not digests:
            return []
        query = select(api_keys).where(api_keys.c.digest.in_(list(digests)))
        return [_key(row) for row in self._conn.execute(query.order_by(api_keys.c.id))]

    def deactivate(self, org_id: str, key_id: str, *, at: datetime) -> bool:
        # Conditional, with RETURNING: of two reports racing for one key, exactly one sees
        # True (and writes the audit event and the webhook); the other changes nothing.
        c = api_keys.c
        query = (
            update(api_keys)
            .where(c.org_id == org_id, c.id == key_id, c.status == "active")
            .values(status="inactive", updated_at=at)
            .returning(c.id)
        )
        return self._conn.execute(query).first() is not None

    def page(
        self,
        org_id: str,
        *,
        now: datetime,
        limit: int,
        after: str | None,
        status: KeyStatus | None,
        app_id: str | None,
        q: str | None = None,
        environment: Environment | None = None,
        parent_id: str | None = None,
    ) -> list[ApiKey]:
        c = api_keys.c
        query = select(api_keys).where(c.org_id == org_id)
        if parent_id is not None:
            query = query.where(c.parent_id == parent_id)
        if after is not None:
            query = query.where(c.id < after)
        if app_id is not None:
            query = query.where(c.app_id == app_id)
        if environment is not None:
            query = query.where(c.environment == environment)
        if q:
            # autoescape: a % or _ typed into the search box is that character, not a
            # wildcard. Names match anywhere, ids from their start, both ignoring case.
            query = query.where(
                or_(c.name.icontains(q, autoescape=True), c.id.istartswith(q, autoescape=True))
            )
        live = or_(c.expires_at.is_(None), c.expires_at > now)
        if status == "expired":
            query = query.where(and_(c.expires_at.is_not(None), c.expires_at <= now))
        elif status is not None:
            query = query.where(c.status == status, live)
        rows = self._conn.execute(query.order_by(c.id.desc()).limit(limit))
        return [_key(row) for row in rows]

    def children_of(self, org_id: str, parent_ids: Sequence[str]) -> list[ApiKey]:
        if not parent_ids:
            return []
        c = api_keys.c
        query = select(api_keys).where(c.org_id == org_id, c.parent_id.in_(list(parent_ids)))
        return [_key(row) for row in self._conn.execute(query.order_by(c.id))]

    def insert(self, key: ApiKey) -> None:
        self._conn.execute(insert(api_keys).values(**_key_fields(key)))

    def update(self, key: ApiKey) -> None:
        values = _key_fields(key)
        for frozen in (
            "id",
            "org_id",
            "name",
            "digest",
            "digest_version",
            "masked_key",
            "environment",
            "scopes",
            "app_id",
            "created_at",
            "created_by",
            "last_used_at",
            # Rotation links only change through mark_rotated; the count only in batches.
            "rotated_from",
            "rotated_to",
            "parent_id",
            "depth",
            "rotated_at",
            "uses_since_rotation",
            # The quota's count changes only by set_quota/add_quota and the limiter's
            # batches: writing back a count read earlier would undo a batch (PostgreSQL
            # reads committed).
            "quota_remaining",
            "quota_refilled_at",
        ):
            del values[frozen]
        query = update(api_keys).where(api_keys.c.org_id == key.org_id, api_keys.c.id == key.id)
        self._conn.execute(query.values(**values))

    def mark_rotated(
        self, org_id: str, key_id: str, *, rotated_to: str, at: datetime, expires_at: datetime
    ) -> bool:
        """Link a key to its successor and end its grace at ``expires_at``; False when it was
        already rotated (the condition makes two concurrent rotations one winner)."""
        c = api_keys.c
        query = (
            update(api_keys)
            .where(c.org_id == org_id, c.id == key_id, c.rotated_to.is_(None))
            .values(
                rotated_to=rotated_to,
                rotated_at=at,
                expires_at=expires_at,
                uses_since_rotation=0,
                updated_at=at,
            )
        )
        return self._conn.execute(query).rowcount > 0

    def delete(self, org_id: str, key_id: str) -> bool:
        query = delete(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.id == key_id)
        return self._conn.execute(query).rowcount > 0

    def ids_with_profile(self, org_id: str, profile_id: str, limit: int) -> list[str]:
        c = api_keys.c
        query = select(c.id).where(c.org_id == org_id, c.profile_id == profile_id).order_by(c.id)
        return list(self._conn.scalars(query.limit(limit)))

    def ids_in_app(self, org_id: str, app_id: str) -> list[str]:
        c = api_keys.c
        query = select(c.id).where(c.org_id == org_id, c.app_id == app_id).order_by(c.id)
        return list(self._conn.scalars(query))

    def full_access(self, org_id: str, *, now: datetime, limit: int) -> list[ApiKey]:
        """Unexpired keys whose effective scopes are everything, newest first: no own scopes
        (or ``*``), and no app or an app that grants everything."""
        c = api_keys.c
        open_apps = select(apps.c.id).where(apps.c.org_id == org_id, grants_everything(apps.c))
        query = select(api_keys).where(
            c.org_id == org_id,
            grants_everything(c),
            or_(c.app_id.is_(None), c.app_id.in_(open_apps)),
            or_(c.expires_at.is_(None), c.expires_at > now),
        )
        rows = self._conn.execute(query.order_by(c.id.desc()).limit(limit))
        return [_key(row) for row in rows]

    def scoped(self, org_id: str) -> list[tuple[str, tuple[str, ...]]]:
        query = select(api_keys.c.id, api_keys.c.scopes).where(api_keys.c.org_id == org_id)
        return [(row.id, tuple(row.scopes)) for row in self._conn.execute(query) if row.scopes]

    # The expiry jobs' claims (services/expiry.py). Each locks the keys it answers with
    # FOR UPDATE SKIP LOCKED on PostgreSQL, so concurrent runners split the work instead of
    # waiting for each other; SQLite ignores the clause (its write lock serialises runners).
    # Keys already noticed are left out in SQL, so a batch is always new work.

    def orgs_with_expiries(self, *, after: datetime | None, until: datetime) -> list[str]:
        """Organizations with a key whose expiry lies in ``(after, until]`` (``after`` None:
        any time up to ``until``)."""
        c = api_keys.c
        query = select(c.org_id).distinct().where(c.expires_at.is_not(None), c.expires_at <= until)
        if after is not None:
            query = query.where(c.expires_at > after)
        return list(self._conn.scalars(query.order_by(c.org_id)))

    def claim_expired(
        self, org_id: str, *, now: datetime, purge_before: datetime, limit: int
    ) -> list[ApiKey]:
        """Expired keys not yet noticed as expired (for this expiry), or whose expiry is at or
        before ``purge_before`` (due for the purge)."""
        c = api_keys.c
        query = select(api_keys).where(
            c.org_id == org_id,
            c.expires_at.is_not(None),
            c.expires_at <= now,
            or_(c.expires_at <= purge_before, ~_noticed("expired", c.expires_at)),
        )
        return self._claim(query, limit)

    def claim_expiring(
        self, org_id: str, *, after: datetime, until: datetime, threshold_days: int, limit: int
    ) -> list[ApiKey]:
        """Keys not rotated out, expiring in ``(after, until]``, with no warning yet for
        this expiry at this threshold or a smaller one."""
        c = api_keys.c
        query = select(api_keys).where(
            c.org_id == org_id,
            c.rotated_to.is_(None),
            c.expires_at > after,
            c.expires_at <= until,
            ~_noticed("expiring", c.expires_at, key_notices.c.threshold_days <= threshold_days),
        )
        return self._claim(query, limit)

    def claim_rotation_due(
        self, org_id: str, *, created_before: datetime, now: datetime, limit: int
    ) -> list[ApiKey]:
        """Unexpired keys not rotated out, created at or before ``created_before``, not yet
        reminded."""
        c = api_keys.c
        query = select(api_keys).where(
            c.org_id == org_id,
            c.rotated_to.is_(None),
            c.created_at <= created_before,
            or_(c.expires_at.is_(None), c.expires_at > now),
            ~_noticed("rotation_due", c.created_at),
        )
        return self._claim(query, limit)

    def _claim(self, query: Select[Any], limit: int) -> list[ApiKey]:
        query = query.order_by(api_keys.c.id).limit(limit)
        rows = self._conn.execute(query.with_for_update(skip_locked=True, of=api_keys))
        return [_key(row) for row in rows]

    def record_last_used(self, used: Mapping[str, datetime], counts: Mapping[str, int]) -> None:
        """Last-used times, and for rotated keys the verifications since their rotation.

        Safe with several nodes flushing at once (STYLE.md habit 20). Keys are written in
        id order, so two flushes over overlapping keys lock their rows in the same order and
        one waits for the other instead of deadlocking. A time never moves backwards: a node
        whose batch is older (it flushed late, or its clock is behind) leaves a newer time
        in place; its use counts are added all the same, which is why this is a CASE and not
        a WHERE on the time. Not ``SKIP LOCKED`` as warehouse does: a skipped row would lose
        those counts.
        """
        c = api_keys.c
        used_at = bindparam("used_at", type_=c.last_used_at.type)
        query = (
            update(api_keys)
            .where(c.id == bindparam("key_id"))
            .values(
                last_used_at=case(
                    (or_(c.last_used_at.is_(None), c.last_used_at < used_at), used_at),
                    else_=c.last_used_at,
                ),
                uses_since_rotation=case(
                    (c.rotated_at.is_(None), c.uses_since_rotation),
                    else_=c.uses_since_rotation + bindparam("uses", type_=Integer),
                ),
            )
        )
        params = [
            {"key_id": key_id, "used_at": at, "uses": counts.get(key_id, 0)}
            for key_id, at in sorted(used.items())
        ]
        if params:
            self._conn.execute(query, params)

    def set_quota(self, org_id: str, key_id: str, quota: Quota | None) -> None:
        """Replace the key's quota (its count, refill and refill instant), or remove it."""
        query = update(api_keys).where(api_keys.c.org_id == org_id, api_keys.c.id == key_id)
        self._conn.execute(query.values(**_quota_fields(quota)))

    def add_quota(self, org_id: str, key_id: str, amount: int) -> None:
        """Add to the stored count (relative, so an unwritten batch of spends still applies)."""
        c = api_keys.c
        query = update(api_keys).where(c.org_id == org_id, c.id == key_id)
        self._conn.execute(query.values(quota_remaining=c.quota_remaining + amount))

    def quota(self, key_id: str) -> Quota | None:
        c = api_keys.c
        query = select(c.quota_remaining, c.quota_refill, c.quota_refilled_at).where(c.id == key_id)
        row = self._conn.execute(query).first()
        if row is None or row.quota_remaining is None:
            return None
        return Quota(row.quota_remaining, refill_of(row.quota_refill), row.quota_refilled_at)

    def record_quota(self, spent: Mapping[str, tuple[int, datetime | None, int]]) -> None:
        """A limiter's batch: per key, (spent since the last batch or refill, the refill
        instant those spends were made under or None, the refill amount). Relative to the
        stored count, so batches of several processes add up:

        - a refill instant newer than the stored one: the count is amount - spent (the
          first batch after a refill applies it; later ones under the same instant
          subtract);
        - the same instant, or None: spent is subtracted (never below 0);
        - an older instant: ignored, a refill since has replaced what those spends left.

        Keys are written in sorted order, so two writers never deadlock."""
        c = api_keys.c
        at = bindparam("refilled_at", type_=c.quota_refilled_at.type)
        newer = and_(at.is_not(None), or_(c.quota_refilled_at.is_(None), c.quota_refilled_at < at))
        base = case((newer, bindparam("amount", type_=Integer)), else_=c.quota_remaining)
        remaining = base - bindparam("spent", type_=Integer)
        query = (
            update(api_keys)
            .where(
                c.id == bindparam("key_id"),
                c.quota_remaining.is_not(None),
                or_(at.is_(None), c.quota_refilled_at.is_(None), c.quota_refilled_at <= at),
            )
            .values(
                quota_remaining=case((remaining < 0, 0), else_=remaining),
                quota_refilled_at=case((newer, at), else_=c.quota_refilled_at),
            )
        )
        params = [
            {"key_id": key_id, "spent": spent_, "refilled_at": at, "amount": amount}
            for key_id, (spent_, at, amount) in sorted(spent.items())
        ]
        if params:
            self._conn.execute(query, params)


def _quota_fields(quota: Quota | None) -> dict[str, Any]:
    if quota is None:
        return {"quota_remaining": None, "quota_refill": None, "quota_refilled_at": None}
    return {
        "quota_remaining": quota.remaining,
        "quota_refill": quota.refill.as_json() if quota.refill else None,
        "quota_refilled_at": quota.refilled_at,
    }


def _noticed(kind: str, due_at: Any, *more: ColumnElement[bool]) -> Exists:
    n = key_notices.c
    return exists().where(n.key_id == api_keys.c.id, n.kind == kind, n.due_at == due_at, *more)


def _key_fields(key: ApiKey) -> dict[str, Any]:
    values = _fields(key)
    values["status"] = values.pop("stored_status")
    values["scopes"] = list(key.scopes)
    values["ratelimits"] = ratelimits_json(key.ratelimits)
    values["ip_allowlist"] = list(key.ip_allowlist)
    del values["quota"]
    values.update(_quota_fields(key.quota))
    return values


def _key(row: Row[Any]) -> ApiKey:
    m = dict(row._mapping)
    m["stored_status"] = m.pop("status")
    m["scopes"] = tuple(m["scopes"])
    m["ratelimits"] = ratelimits_of(m["ratelimits"])
    m["ip_allowlist"] = tuple(m["ip_allowlist"] or ())
    remaining = m.pop("quota_remaining")
    refill = refill_of(m.pop("quota_refill"))
    refilled_at = m.pop("quota_refilled_at")
    m["quota"] = Quota(remaining, refill, refilled_at) if remaining is not None else None
    return ApiKey(**m)
