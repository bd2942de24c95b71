"""Usage counts per key, bucket (minute, hour, day) and outcome.

Revision ID: 0005_usage
Revises: 0005_rotation
Create Date: 2026-11-30 17:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_usage"
down_revision = "0005_rotation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "usage_counts",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("granularity", sa.String(length=10), nullable=False),
        sa.Column("key_id", sa.String(length=40), nullable=False),
        sa.Column("bucket_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("outcome", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.String(length=40), nullable=True),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "org_id",
            "granularity",
            "key_id",
            "bucket_start",
            "outcome",
            name=op.f("pk_usage_counts"),
        ),
    )
    op.create_index(
        op.f("ix_usage_counts_org_id_granularity_app_id_bucket_start"),
        "usage_counts",
        ["org_id", "granularity", "app_id", "bucket_start"],
    )
    op.create_index(
        op.f("ix_usage_counts_org_id_granularity_bucket_start"),
        "usage_counts",
        ["org_id", "granularity", "bucket_start"],
    )
    op.create_index(
        op.f("ix_usage_counts_granularity_bucket_start"),
        "usage_counts",
        ["granularity", "bucket_start"],
    )


def downgrade() -> None:
    op.drop_table("usage_counts")
