"""The schema. Alembic migrations in ``migrations/versions`` create it; this module describes it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on SQLite (which keeps no zone) too."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)  # noqa: S101 - the column type guarantees it
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDoc = JSON().with_variant(JSONB(), "postgresql")

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organizations = Table(
    "organizations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("require_explicit_scopes", Boolean, nullable=False, default=False),
    Column("max_key_lifetime_days", Integer, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Lifecycle settings (domain/expiry.py, services/expiry.py).
    Column("expired_key_retention_days", Integer, nullable=False, server_default=text("0")),
    Column("expiry_warning_days", JSONDoc, nullable=False, server_default=text("'[7, 1]'")),
    Column("rotation_period_days", Integer, nullable=True),
    # Default rate limits of every key, as [{name, limit, period_seconds}] (domain/ratelimits.py).
    Column("ratelimits", JSONDoc, nullable=False, server_default=text("'[]'")),
    # What a key reported leaked becomes: "disable" or "delete" (services/leaks.py).
    Column("leaked_key_action", String(10), nullable=False, server_default=text("'disable'")),
    # Gateway route rules, as [{method, path, scopes}] in order (domain/routes.py).
    Column("route_table", JSONDoc, nullable=False, server_default=text("'[]'")),
)

# A person who signs in (email, password), whatever organizations they belong to.
identities = Table(
    "identities",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("email", String(254), nullable=False, unique=True),
    Column("password_hash", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
)

# An identity's membership of one organization, with its role. Its id is the public
# ``usr_…`` id of the /v1/users API (and of audit events written before identities existed).
memberships = Table(
    "memberships",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "identity_id", String(40), ForeignKey("identities.id", ondelete="CASCADE"), nullable=False
    ),
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    # Pending until its own set-password link is used (services/users.py explains why).
    Column("pending", Boolean, nullable=False, default=False),
    # A one-time set-password link: SHA-256 of its token, and when it stops working.
    Column("setup_digest", String(64), nullable=True, unique=True),
    Column("setup_expires_at", UTCDateTime, nullable=True),
    UniqueConstraint("identity_id", "org_id"),
    Index(None, "org_id"),
)

resources = Table(
    "resources",
    metadata,
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    ),
    Column("name", String(40), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("actions", JSONDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)

apps = Table(
    "apps",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("scopes", JSONDoc, nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("ratelimits", JSONDoc, nullable=False, server_default=text("'[]'")),
    UniqueConstraint("org_id", "name"),
)

profiles = Table(
    "profiles",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("settings", JSONDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

# Permission presets (services/presets.py): named scope sets a key or an app starts from.
# The scopes are copied when used; nothing points back here.
presets = Table(
    "presets",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    Column("scopes", JSONDoc, nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("org_id", "name"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("name", String(200), nullable=False),
    Column("description", Text, nullable=False),
    # HMAC-SHA256 of the key under the pepper, hex; never the key itself.
    Column("digest", String(128), nullable=False, unique=True),
    Column("digest_version", Integer, nullable=False),
    Column("masked_key", String(40), nullable=False),
    Column("environment", String(10), nullable=False),
    Column("scopes", JSONDoc, nullable=False),
    Column("app_id", String(40), ForeignKey("apps.id", ondelete="CASCADE"), nullable=True),
    Column("profile_id", String(40), ForeignKey("profiles.id"), nullable=True),
    Column("metadata", JSONDoc, nullable=False),
    Column("status", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(40), nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=True),
    Column("last_used_at", UTCDateTime, nullable=True),
    # Rotation (services/rotation.py): the key this one replaced, the key that replaced it,
    # when, and how many verifications it answered since (written in the last-used batches).
    Column("rotated_from", String(40), nullable=True),
    Column("rotated_to", String(40), nullable=True),
    Column("rotated_at", UTCDateTime, nullable=True),
    Column("uses_since_rotation", Integer, nullable=False, server_default=text("0")),
    # Per-key limits (domain/ratelimits.py). The quota's remaining count is written by the
    # limiter's batches (spent amounts subtracted, never overwritten) and by PATCH; null
    # quota_remaining: no quota. quota_refilled_at: the refill the count already reflects.
    Column("ratelimits", JSONDoc, nullable=False, server_default=text("'[]'")),
    Column("ip_allowlist", JSONDoc, nullable=False, server_default=text("'[]'")),
    Column("quota_remaining", BigInteger, nullable=True),
    Column("quota_refill", JSONDoc, nullable=True),
    Column("quota_refilled_at", UTCDateTime, nullable=True),
    # Delegation (services/delegation.py): the key that created this one (null: a root
    # key) and how deep it is (0: root). FK-like, not a foreign key: the key service
    # deletes descendants itself, each with its audit event (migration 0008_children).
    Column("parent_id", String(40), nullable=True),
    Column("depth", Integer, nullable=False, server_default=text("0")),
    Index(None, "org_id", "id"),
    Index(None, "org_id", "parent_id"),
    Index(None, "app_id"),
    Index(None, "profile_id"),
    Index(None, "expires_at"),
)

# Lifecycle notices about keys (services/expiry.py): each expiry warning, expiry and
# rotation reminder once per (key, kind, threshold, expiry), which the unique constraint
# guarantees across job runners; with its email's state for the retries. Deleted with the key.
key_notices = Table(
    "key_notices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("key_id", String(40), ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("kind", String(20), nullable=False),
    Column("threshold_days", Integer, nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("mail_status", String(10), nullable=False),
    Column("mail_attempts", Integer, nullable=False, server_default=text("0")),
    # A runner sending the email holds the notice until then; past it another may retry.
    Column("mail_claimed_until", UTCDateTime, nullable=True),
    UniqueConstraint("key_id", "kind", "threshold_days", "due_at"),
    Index(None, "mail_status", "created_at"),
)

audit_events = Table(
    "audit_events",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("actor", String(40), nullable=False),
    Column("action", String(60), nullable=False),
    Column("target_type", String(20), nullable=False),
    Column("target_id", String(60), nullable=False),
    Column("details", JSONDoc, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("actor_type", String(10), nullable=False),
    Column("actor_name", String(254), nullable=True),
    Column("target_name", String(254), nullable=True),
    Column("client_ip", String(64), nullable=True),
    Column("user_agent", String(512), nullable=True),
    Column("changes", JSONDoc, nullable=False),
    # The hash chain (domain/audit.py): one sequence per organization, no gaps, no forks.
    Column("seq", BigInteger, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index(None, "org_id", "id"),
    UniqueConstraint("org_id", "seq"),
)

# The last event of each organization's chain. Appending locks this row (FOR UPDATE on
# PostgreSQL; SQLite's write lock serialises writers anyway), so two nodes never fork a chain.
audit_chain_heads = Table(
    "audit_chain_heads",
    metadata,
    Column("org_id", String(40), primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", String(40), primary_key=True),
    # SHA-256 of the cookie's random token; the token itself is never stored.
    Column("digest", String(64), nullable=False, unique=True),
    Column(
        "identity_id", String(40), ForeignKey("identities.id", ondelete="CASCADE"), nullable=False
    ),
    # The membership acted as; NULL until an identity with several has chosen one.
    Column("user_id", String(40), ForeignKey("memberships.id", ondelete="CASCADE"), nullable=True),
    Column("org_id", String(40), nullable=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("ip", String(64), nullable=False),
    Index(None, "identity_id"),
    Index(None, "user_id"),
    Index(None, "expires_at"),
)

# Facts about this installation, one row each. ``secret_check``: the key-hashing secret's
# check value (KeyHasher.secret_check), written at first start and compared at every start.
instance_settings = Table(
    "instance_settings",
    metadata,
    Column("name", String(60), primary_key=True),
    Column("value", Text, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# Keys that sign OAuth access tokens (JWTs), instance-wide: the private key sealed under
# the server secret (jose.py), never in clear; ``state`` current | previous | retired, at most
# one ``current`` (the partial unique index: two nodes' first starts race on it, one wins).
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(40), primary_key=True),
    Column("algorithm", String(10), nullable=False),
    Column("private_key", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("state", String(10), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("rotated_at", UTCDateTime, nullable=True),
    Index(
        "ix_signing_keys_one_current",
        "state",
        unique=True,
        postgresql_where=text("state = 'current'"),
        sqlite_where=text("state = 'current'"),
    ),
)

# Usage counts per bucket (a minute, an hour or a day), key and outcome; one batch from a
# node adds to all three granularities at once (domain/usage.py). ``key_id`` is '' for
# NOT_FOUND answers about no key of the organization: a primary key column cannot be NULL,
# and '' is no key id. No foreign keys: the counts of a deleted key stay in the
# organization's totals until retention removes them.
usage_counts = Table(
    "usage_counts",
    metadata,
    Column("org_id", String(40), primary_key=True),
    Column("granularity", String(10), primary_key=True),
    Column("key_id", String(40), primary_key=True),
    Column("bucket_start", UTCDateTime, primary_key=True),
    Column("outcome", String(40), primary_key=True),
    Column("app_id", String(40), nullable=True),
    Column("count", BigInteger, nullable=False),  # a busy key passes 2^31 a day
    Index(None, "org_id", "granularity", "app_id", "bucket_start"),
    Index(None, "org_id", "granularity", "bucket_start"),
    Index(None, "granularity", "bucket_start"),
)

# Webhook endpoints. No secret column: the signing secret is derived from the server secret,
# the id and ``secret_generation`` (KeyHasher.webhook_secret); only the number is kept.
webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "org_id", String(40), ForeignKey("organizations.id", ondelete="CASCADE"), nullable=False
    ),
    Column("url", String(2048), nullable=False),
    Column("events", JSONDoc, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("description", Text, nullable=False),
    Column("secret_generation", Integer, nullable=False),
    Column("previous_secret_until", UTCDateTime, nullable=True),
    Column("failing_since", UTCDateTime, nullable=True),
    Column("disabled_reason", String(200), nullable=True),
    # Disabled by the delivery job and its owners not yet emailed: the email is sent from
    # this row, so a crash after the disabling commits still sends it.
    Column("notice_due", Boolean, nullable=False, server_default=text("false")),
    Column("created_by", String(40), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Index(None, "org_id", "id"),
)

# The transactional outbox: one row per message and endpoint, written in the transaction of
# the change it reports. ``payload`` is text, not JSON: every retry signs the same bytes.
webhook_messages = Table(
    "webhook_messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), nullable=False),
    Column("webhook_id", String(40), ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False),
    Column("event_type", String(40), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(10), nullable=False),
    Column("attempt_count", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("retry_from", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("last_attempt_at", UTCDateTime, nullable=True),
    Column("delivered_at", UTCDateTime, nullable=True),
    Column("lease_until", UTCDateTime, nullable=True),
    Index(None, "webhook_id", "id"),
    Index(None, "status", "next_attempt_at"),
)

# Every attempt at delivering a message: status, latency and the start of the response.
webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column(
        "message_id",
        String(40),
        ForeignKey("webhook_messages.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("webhook_id", String(40), nullable=False),
    Column("org_id", String(40), nullable=False),
    Column("attempted_at", UTCDateTime, nullable=False),
    Column("status_code", Integer, nullable=True),
    Column("latency_ms", Integer, nullable=False),
    Column("excerpt", String(500), nullable=False),
    Column("error", String(200), nullable=True),
    Index(None, "message_id", "id"),
)
