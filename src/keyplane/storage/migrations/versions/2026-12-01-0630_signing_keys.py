"""Token signing keys: the keys that sign short-lived OAuth access tokens (JWTs).

``signing_keys`` holds one row per key: its ``kid``, ``algorithm`` (``EdDSA``), the private
key sealed under the server secret (AES-GCM, jose.py; never the key itself), the public key
as a JWK (JSON text) and its ``state``: ``current`` (signs new tokens; at most one row, by
a partial unique index, so two nodes' first starts cannot both create one), ``previous``
(verifies tokens it signed, published in the JWKS) or ``retired`` (neither).
``rotated_at``: when it stopped being current.

Downgrade drops the table: tokens already issued stop verifying, as after any restart
that loses the keys.

Revision ID: 0011_signing_keys
Revises: 0010_children
Create Date: 2026-12-01 06:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0011_signing_keys"
down_revision = "0010_children"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signing_keys",
        sa.Column("kid", sa.String(40), primary_key=True),
        sa.Column("algorithm", sa.String(10), nullable=False),
        sa.Column("private_key", sa.Text, nullable=False),
        sa.Column("public_jwk", sa.Text, nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        "ix_signing_keys_one_current",
        "signing_keys",
        ["state"],
        unique=True,
        postgresql_where=sa.text("state = 'current'"),
        sqlite_where=sa.text("state = 'current'"),
    )


def downgrade() -> None:
    op.drop_index("ix_signing_keys_one_current", table_name="signing_keys")
    op.drop_table("signing_keys")
