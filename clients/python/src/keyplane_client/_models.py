"""What keyplane answers, as typed models.

Tolerant by design: a field a newer server adds is kept (``extra="allow"``, reachable as
an attribute and in ``model_dump()``) rather than refused, so an upgrade of the server
never breaks a deployed client. Secrets shown once (a full key, a webhook's signing
secret, a set-password link) are left out of ``repr()``, so a log line or a traceback
that prints a model never prints them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field


class Model(BaseModel):
    model_config = ConfigDict(extra="allow", populate_by_name=True)


# --- request parameters (plain dicts, typed) ---------------------------------------------


class RateLimitParam(TypedDict):
    """A named rate limit to set: ``limit`` uses per ``period_seconds``."""

    name: str
    limit: int
    period_seconds: int


class RefillParam(TypedDict, total=False):
    amount: int
    interval: Literal["daily", "monthly"]
    day_of_month: int


class QuotaParam(TypedDict, total=False):
    """``{remaining, refill}`` sets a quota; on update ``{add: n}`` adds to it."""

    remaining: int
    refill: RefillParam
    add: int


class RouteParam(TypedDict):
    method: str
    path: str
    scopes: list[str]


# --- limits -------------------------------------------------------------------------------


class RateLimit(Model):
    name: str
    limit: int
    period_seconds: int


class Refill(Model):
    amount: int
    interval: str
    day_of_month: int = 1


class Quota(Model):
    remaining: int
    refill: Refill | None = None


class RateLimitState(Model):
    """A rate limit after a check: what remains and when it is whole again."""

    name: str
    limit: int
    remaining: int
    reset_seconds: int
    reset_at: datetime | None = None


class QuotaState(Model):
    remaining: int


# --- keys ---------------------------------------------------------------------------------


class Key(Model):
    """A key record. Never the full key: that is only in :class:`CreatedKey`."""

    id: str
    name: str
    description: str = ""
    client_id: str | None = None
    masked_key: str
    scopes: list[str] = Field(default_factory=list)
    effective_scopes: list[str] = Field(default_factory=list)
    full_access: bool = False
    status: str
    app_id: str | None = None
    profile_id: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    environment: str = "live"
    created_at: datetime
    created_by: str | None = None
    expires_at: datetime | None = None
    last_used_at: datetime | None = None
    rotated_from: str | None = None
    rotated_to: str | None = None
    rotated_at: datetime | None = None
    verifications_since_rotation: int | None = None
    ratelimits: list[RateLimit] = Field(default_factory=list)
    quota: Quota | None = None
    ip_allowlist: list[str] = Field(default_factory=list)
    current_ratelimits: list[RateLimitState] | None = None
    # Delegation: the key that created this one (POST /v1/keys/{id}/children), and how far
    # below a key made by a person it is (0: such a key).
    parent_id: str | None = None
    depth: int = 0


class CreatedKey(Key):
    """A new key (from create or rotate) with ``key``, the full key, shown this once.

    Store it now; keyplane keeps only a keyed hash. ``repr()`` shows ``masked_key``, never
    ``key`` or ``client_secret``."""

    key: str = Field(repr=False)
    client_secret: str | None = Field(default=None, repr=False)
    warning: str = ""


class VerifiedProfile(Model):
    id: str
    name: str
    settings: dict[str, Any] = Field(default_factory=dict)


class Verdict(Model):
    """keyplane's answer about a key: ``valid`` and why (``code``: ``VALID``,
    ``NOT_FOUND``, ``EXPIRED``, ``DISABLED``, ``IP_FORBIDDEN``, ``INSUFFICIENT_SCOPE``,
    ``RATE_LIMITED`` or ``USAGE_EXCEEDED``), with what the key may do and carries."""

    valid: bool
    code: str
    key_id: str | None = None
    app_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
    missing_scopes: list[str] = Field(default_factory=list)
    profile: VerifiedProfile | None = None
    metadata: dict[str, Any] | None = None
    environment: str | None = None
    expires_at: datetime | None = None
    ratelimits: list[RateLimitState] = Field(default_factory=list)
    quota: QuotaState | None = None


# --- apps, catalogue, profiles, users -------------------------------------------------------


class App(Model):
    id: str
    name: str
    description: str = ""
    scopes: list[str] = Field(default_factory=list)
    full_access: bool = False
    key_count: int = 0
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime | None = None
    ratelimits: list[RateLimit] = Field(default_factory=list)


class Resource(Model):
    """A resource of the permission catalogue (built in, or the organization's own)."""

    name: str
    title: str
    description: str = ""
    actions: list[str] = Field(default_factory=list)
    builtin: bool = False
    scopes: list[str] = Field(default_factory=list)


class Profile(Model):
    id: str
    name: str
    description: str = ""
    settings: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime | None = None


class Preset(Model):
    """Named scopes to start a key or an app from; they keep their own copy."""

    id: str
    name: str
    description: str = ""
    scopes: list[str]
    created_by: str = ""
    created_at: datetime
    updated_at: datetime | None = None


class User(Model):
    id: str
    email: str
    name: str = ""
    role: str
    has_password: bool = False
    created_at: datetime


class CreatedUser(User):
    """A new user; ``set_password_url`` (shown once, a secret) when no password was given."""

    set_password_url: str | None = Field(default=None, repr=False)


class Organization(Model):
    id: str
    name: str
    require_explicit_scopes: bool = False
    max_key_lifetime_days: int | None = None
    expired_key_retention_days: int = 0
    expiry_warning_days: list[int] = Field(default_factory=list)
    rotation_period_days: int | None = None
    created_at: datetime
    updated_at: datetime | None = None
    ratelimits: list[RateLimit] = Field(default_factory=list)
    # What a gateway's requests need (GET /v1/auth/nginx): [{method, path, scopes}], in order.
    route_table: list[dict[str, Any]] = Field(default_factory=list)
    leaked_key_action: str = "disable"


# --- webhooks -------------------------------------------------------------------------------


class Webhook(Model):
    id: str
    url: str
    events: list[str] = Field(default_factory=list)
    enabled: bool = True
    description: str = ""
    disabled_reason: str | None = None
    failing_since: datetime | None = None
    previous_secret_valid_until: datetime | None = None
    created_by: str | None = None
    created_at: datetime
    updated_at: datetime | None = None


class CreatedWebhook(Webhook):
    """A webhook with its signing secret (``whsec_…``), shown this once (create, roll)."""

    secret: str = Field(repr=False)
    warning: str = ""


class DeliveryAttempt(Model):
    id: str
    attempted_at: datetime
    ok: bool
    status_code: int | None = None
    latency_ms: int = 0
    response_excerpt: str = ""
    error: str | None = None


class Delivery(Model):
    """A message to a webhook (``id`` is its ``webhook-id``) and every attempt to send it."""

    id: str
    event_type: str
    status: str
    payload: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime
    attempt_count: int = 0
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    attempts: list[DeliveryAttempt] = Field(default_factory=list)


# --- audit ----------------------------------------------------------------------------------


class AuditActor(Model):
    type: str
    id: str
    name: str | None = None


class AuditTarget(Model):
    type: str
    id: str
    name: str | None = None


class AuditChange(Model):
    before: Any = None
    after: Any = None


class AuditEvent(Model):
    id: str
    time: datetime
    organization: str
    actor: AuditActor
    action: str
    target: AuditTarget
    client_ip: str | None = None
    user_agent: str | None = None
    changes: dict[str, AuditChange] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    seq: int
    prev_hash: str
    hash: str


# --- usage ----------------------------------------------------------------------------------


class UsagePoint(Model):
    start: datetime
    counts: dict[str, int] = Field(default_factory=dict)


class UsageSeries(Model):
    """Answers per bucket and outcome; ``start``/``end`` are the JSON's ``from``/``to``."""

    granularity: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    key_id: str | None = None
    app_id: str | None = None
    data: list[UsagePoint] = Field(default_factory=list)


class KeyUsage(Model):
    key_id: str
    app_id: str | None = None
    total: int
    counts: dict[str, int] = Field(default_factory=dict)


class TopKeys(Model):
    granularity: str
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    data: list[KeyUsage] = Field(default_factory=list)
