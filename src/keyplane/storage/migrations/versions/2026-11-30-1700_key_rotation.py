"""Key rotation: each key may name the key it replaced and the key that replaced it.

``rotated_at`` is when a key was rotated (its grace period then runs until its
``expires_at``); ``uses_since_rotation`` counts the verifications it answered since then,
written by the batched last-used recorder, never on the request path.

Revision ID: 0005_rotation
Revises: 0004
Create Date: 2026-11-30 17:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0005_rotation"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("rotated_from", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("rotated_to", sa.String(length=40), nullable=True))
        batch.add_column(sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column(
                "uses_since_rotation", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("uses_since_rotation")
        batch.drop_column("rotated_at")
        batch.drop_column("rotated_to")
        batch.drop_column("rotated_from")
