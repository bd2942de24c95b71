"""Key expiry: the organizations' lifecycle settings and the notices sent about keys.

``organizations`` gains ``expired_key_retention_days`` (0: purge at expiry),
``expiry_warning_days`` (JSON list, ``[7, 1]``) and ``rotation_period_days`` (null: no
reminders); existing organizations get the defaults. ``key_notices`` records each expiry
warning, expiry and rotation reminder once per key (the unique constraint is what makes two
job runners agree), with the state of its email. ``api_keys.expires_at`` gets an index: the
expiry jobs look keys up by it on every round.

Downgrade drops the table, the index and the columns. Both directions alter
``organizations`` in place (see ``downgrade``).

Revision ID: 0006_expiry
Revises: 0005_audit
Create Date: 2026-11-30 18:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006_expiry"
down_revision = "0005_audit"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.add_column(
            sa.Column(
                "expired_key_retention_days",
                sa.Integer(),
                nullable=False,
                server_default=sa.text("0"),
            )
        )
        batch.add_column(
            sa.Column(
                "expiry_warning_days", _JSON, nullable=False, server_default=sa.text("'[7, 1]'")
            )
        )
        batch.add_column(sa.Column("rotation_period_days", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_api_keys_expires_at"), "api_keys", ["expires_at"])
    op.create_table(
        "key_notices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("threshold_days", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("mail_status", sa.String(length=10), nullable=False),
        sa.Column("mail_attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("mail_claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_key_notices_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_key_notices")),
        sa.UniqueConstraint(
            "key_id",
            "kind",
            "threshold_days",
            "due_at",
            name=op.f("uq_key_notices_key_id_kind_threshold_days_due_at"),
        ),
    )
    op.create_index(
        op.f("ix_key_notices_mail_status_created_at"), "key_notices", ["mail_status", "created_at"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_key_notices_mail_status_created_at"), table_name="key_notices")
    op.drop_table("key_notices")
    op.drop_index(op.f("ix_api_keys_expires_at"), table_name="api_keys")
    # ALTER TABLE … DROP COLUMN in place (SQLite 3.35+), never a copy of the table: copying
    # drops the old ``organizations``, and with foreign keys on that deletes every row that
    # references it ON DELETE CASCADE (memberships, keys, apps …).
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.drop_column("rotation_period_days")
        batch.drop_column("expiry_warning_days")
        batch.drop_column("expired_key_retention_days")
