"""What the verification hot path knows about a key, and the answer it gives.

The checks run in this order, and the first that fails is the answer: format (a malformed
key is NOT_FOUND), existence (NOT_FOUND, also for a key of another organization), status
(EXPIRED once ``expires_at`` has passed, whatever the stored status, then DISABLED), IP
allowlist (IP_FORBIDDEN), scopes (INSUFFICIENT_SCOPE), rate limits (RATE_LIMITED), quota
(USAGE_EXCEEDED). Rate limits and quota are checked together and spent only when all
admit, so a refused verification consumes neither.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal

from keyplane.domain.models import JSONObject, StoredStatus
from keyplane.domain.ratelimits import Admission, IpAllowlist, Quota, RateLimit
from keyplane.domain.routes import EMPTY, RouteTable
from keyplane.domain.scopes import ScopeSet

Code = Literal[
    "VALID",
    "NOT_FOUND",
    "EXPIRED",
    "DISABLED",
    "IP_FORBIDDEN",
    "INSUFFICIENT_SCOPE",
    "RATE_LIMITED",
    "USAGE_EXCEEDED",
]
CODES: Final = (
    "VALID",
    "NOT_FOUND",
    "EXPIRED",
    "DISABLED",
    "IP_FORBIDDEN",
    "INSUFFICIENT_SCOPE",
    "RATE_LIMITED",
    "USAGE_EXCEEDED",
)
NEVER: Final = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class ProfileView:
    id: str
    name: str
    settings: JSONObject


@dataclass(frozen=True, slots=True, eq=False, weakref_slot=True)
class CachedKey:
    """Everything needed to answer a verification without the database.

    Compared and hashed by identity (a change to the key makes a new record), and weakly
    referable, so what the web layer derives from one record (its answer's bytes) can live
    exactly as long as the cache keeps the record.

    ``digest`` is the cache's own key for the record and ``stale_at`` when it is to be read
    again from the store (services/verifying.py: revalidation after the cache TTL).
    """

    key_id: str
    org_id: str
    app_id: str | None
    profile_id: str | None
    stored_status: StoredStatus
    expires_at: datetime | None
    scopes: ScopeSet
    profile: ProfileView | None
    metadata: JSONObject
    environment: str
    digest: str = ""
    stale_at: datetime = NEVER
    # Limits (domain/ratelimits.py): the effective rate limits (org, app and key merged by
    # name), the quota as stored when loaded (the RateLimiter keeps the live count), and
    # the parsed allowlist (None: any address). ``limited``: any limit or quota at all, so
    # an unlimited key's warm path costs one attribute test.
    ratelimits: tuple[RateLimit, ...] = ()
    quota: Quota | None = None
    allowlist: IpAllowlist | None = None
    limited: bool = False
    # Delegation: the ids of the keys above this one, parent first (empty: a root key).
    # ``stored_status`` and ``expires_at`` already fold theirs in (services/verifying.py),
    # so the hot path checks nothing more; the cache forgets this record with any of them.
    ancestors: tuple[str, ...] = ()
    # The organization's compiled route table (GET /v1/auth/nginx), shared by all its keys'
    # records: an org change drops those records (invalidation ``org:<id>``), and with
    # them the table, on every node.
    routes: RouteTable = EMPTY

    def code_at(self, now: datetime) -> Code:
        if self.expires_at is not None and self.expires_at <= now:
            return "EXPIRED"
        if self.stored_status != "active":
            return "DISABLED"
        return "VALID"


@dataclass(frozen=True, slots=True)
class Verdict:
    code: Code
    key: CachedKey | None = None
    missing_scopes: tuple[str, ...] = ()
    admission: Admission | None = None

    @property
    def valid(self) -> bool:
        return self.code == "VALID"
