"""Delegated keys: ``api_keys.parent_id`` (the key that created this one, null for a root
key) and ``depth`` (0 for a root key, 1 for its child, ...), indexed by parent.

No database foreign key: SQLite cannot add one to an existing table in place, and a cascade
the database ran by itself would delete descendants without their audit events. The key
service deletes (and purges) a key's descendants in the same transaction, each audited
(services/delegation.py). Existing rows are root keys.

Downgrade drops the columns in place, like 0007_limits (never a copy of the table).

Revision ID: 0010_children
Revises: 0009_leaked_keys
Create Date: 2026-12-01 06:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_children"
down_revision = "0009_leaked_keys"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", recreate="never") as batch:
        batch.add_column(sa.Column("parent_id", sa.String(40), nullable=True))
        batch.add_column(
            sa.Column("depth", sa.Integer(), nullable=False, server_default=sa.text("0"))
        )
        batch.create_index("ix_api_keys_org_id_parent_id", ["org_id", "parent_id"])


def downgrade() -> None:
    with op.batch_alter_table("api_keys", recreate="never") as batch:
        batch.drop_index("ix_api_keys_org_id_parent_id")
        batch.drop_column("depth")
        batch.drop_column("parent_id")
