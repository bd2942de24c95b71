"""Per-key limits: rate limits on organizations, apps and keys; a key's quota and allowlist.

``organizations.ratelimits`` and ``apps.ratelimits`` are the defaults keys inherit (JSON
lists, ``[]``); ``api_keys`` gains its own ``ratelimits`` and ``ip_allowlist`` (``[]``), and
its quota: ``quota_remaining`` (null: no quota), ``quota_refill`` (JSON or null) and
``quota_refilled_at``. Existing rows get no limits.

Downgrade drops the columns, in place (see 0006_expiry's downgrade for why never a copy).

Revision ID: 0007_limits
Revises: 0006_webhooks
Create Date: 2026-11-30 19:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0007_limits"
down_revision = "0006_webhooks"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _ratelimits() -> sa.Column[object]:
    return sa.Column("ratelimits", _JSON, nullable=False, server_default=sa.text("'[]'"))


def upgrade() -> None:
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.add_column(_ratelimits())
    with op.batch_alter_table("apps", recreate="never") as batch:
        batch.add_column(_ratelimits())
    with op.batch_alter_table("api_keys", recreate="never") as batch:
        batch.add_column(_ratelimits())
        batch.add_column(
            sa.Column("ip_allowlist", _JSON, nullable=False, server_default=sa.text("'[]'"))
        )
        batch.add_column(sa.Column("quota_remaining", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("quota_refill", _JSON, nullable=True))
        batch.add_column(sa.Column("quota_refilled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", recreate="never") as batch:
        batch.drop_column("quota_refilled_at")
        batch.drop_column("quota_refill")
        batch.drop_column("quota_remaining")
        batch.drop_column("ip_allowlist")
        batch.drop_column("ratelimits")
    with op.batch_alter_table("apps", recreate="never") as batch:
        batch.drop_column("ratelimits")
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.drop_column("ratelimits")
