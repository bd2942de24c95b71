"""Gateway route tables: ``organizations.route_table``, the ordered rules that map a
request through nginx's ``auth_request`` to the scopes it needs (domain/routes.py). A JSON
list, ``[]`` for existing rows: no rule, so ``GET /v1/auth/nginx`` denies everything until
an organization writes its table (deny by default).

Downgrade drops the column, in place (see 0006_expiry's downgrade for why never a copy).

Revision ID: 0012_route_table
Revises: 0011_signing_keys
Create Date: 2026-12-01 06:40:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0012_route_table"
down_revision = "0011_signing_keys"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.add_column(
            sa.Column("route_table", _JSON, nullable=False, server_default=sa.text("'[]'"))
        )


def downgrade() -> None:
    with op.batch_alter_table("organizations", recreate="never") as batch:
        batch.drop_column("route_table")
