"""What an organization does with a key reported leaked: ``organizations.leaked_key_action``,
"disable" (the default, also for existing organizations) or "delete".

Downgrade drops the column, in place (see 0006_expiry's downgrade for why never a copy).

Revision ID: 0009_leaked_keys
Revises: 0008_presets
Create Date: 2026-12-01 06:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_leaked_keys"
down_revision = "0008_presets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.add_column(
            sa.Column(
                "leaked_key_action",
                sa.String(10),
                nullable=False,
                server_default=sa.text("'disable'"),
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.drop_column("leaked_key_action")
