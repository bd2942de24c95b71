"""Users become identities (email, password) and memberships (identity, organization, role).

Every existing user becomes one identity (``idn_`` + the user id's ULID) and one membership
that keeps the user's id, so ``usr_…`` ids in the API and in audit events stay valid. A
pending set-password link moves with its membership (pending while the user has no
password). Console sessions are dropped (everyone
signs in again): their rows now name an identity, and a session is cheap to recreate.

Downgrade keeps one membership per identity (the oldest): a person who joined several
organizations keeps only the first of them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 16:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "identities",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identities")),
        sa.UniqueConstraint("email", name=op.f("uq_identities_email")),
    )
    op.create_table(
        "memberships",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("identity_id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("pending", sa.Boolean(), nullable=False),
        sa.Column("setup_digest", sa.String(length=64), nullable=True),
        sa.Column("setup_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["identity_id"],
            ["identities.id"],
            name=op.f("fk_memberships_identity_id_identities"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_memberships_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_memberships")),
        sa.UniqueConstraint("identity_id", "org_id", name=op.f("uq_memberships_identity_id")),
        sa.UniqueConstraint("setup_digest", name=op.f("uq_memberships_setup_digest")),
    )
    with op.batch_alter_table("memberships", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_memberships_org_id"), ["org_id"], unique=False)

    # 'usr_' and 'idn_' have the same length: the identity takes the user's ULID.
    op.execute(
        "INSERT INTO identities (id, email, password_hash, created_at) "
        "SELECT 'idn_' || substr(id, 5), email, password_hash, created_at FROM users"
    )
    op.execute(
        "INSERT INTO memberships "
        "(id, identity_id, org_id, name, role, created_at, pending, "
        "setup_digest, setup_expires_at) "
        "SELECT id, 'idn_' || substr(id, 5), org_id, name, role, created_at, "
        "password_hash IS NULL, setup_digest, setup_expires_at FROM users"
    )

    op.drop_table("console_sessions")
    _create_sessions(identities=True)
    op.drop_table("users")


def downgrade() -> None:
    op.drop_table("console_sessions")
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("password_hash", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("setup_digest", sa.String(length=64), nullable=True),
        sa.Column("setup_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name=op.f("fk_users_org_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("setup_digest", name=op.f("uq_users_setup_digest")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_org_id"), ["org_id"], unique=False)
    op.execute(
        "INSERT INTO users (id, org_id, email, name, role, password_hash, created_at, "
        "setup_digest, setup_expires_at) "
        "SELECT m.id, m.org_id, i.email, m.name, m.role, i.password_hash, m.created_at, "
        "m.setup_digest, m.setup_expires_at "
        "FROM memberships m JOIN identities i ON i.id = m.identity_id "
        "WHERE m.id = (SELECT min(o.id) FROM memberships o WHERE o.identity_id = m.identity_id)"
    )
    _create_sessions(identities=False)
    op.drop_table("memberships")
    op.drop_table("identities")


def _create_sessions(*, identities: bool) -> None:
    owner = (
        [
            sa.Column("identity_id", sa.String(length=40), nullable=False),
            sa.Column("user_id", sa.String(length=40), nullable=True),
            sa.Column("org_id", sa.String(length=40), nullable=True),
        ]
        if identities
        else [
            sa.Column("user_id", sa.String(length=40), nullable=False),
            sa.Column("org_id", sa.String(length=40), nullable=False),
        ]
    )
    keys = (
        [
            sa.ForeignKeyConstraint(
                ["identity_id"],
                ["identities.id"],
                name=op.f("fk_console_sessions_identity_id_identities"),
                ondelete="CASCADE",
            ),
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["memberships.id"],
                name=op.f("fk_console_sessions_user_id_memberships"),
                ondelete="CASCADE",
            ),
        ]
        if identities
        else [
            sa.ForeignKeyConstraint(
                ["user_id"],
                ["users.id"],
                name=op.f("fk_console_sessions_user_id_users"),
                ondelete="CASCADE",
            )
        ]
    )
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        *owner,
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=False),
        *keys,
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
        sa.UniqueConstraint("digest", name=op.f("uq_console_sessions_digest")),
    )
    with op.batch_alter_table("console_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_console_sessions_user_id"), ["user_id"], unique=False)
        if identities:
            batch_op.create_index(
                batch_op.f("ix_console_sessions_identity_id"), ["identity_id"], unique=False
            )
            batch_op.create_index(
                batch_op.f("ix_console_sessions_expires_at"), ["expires_at"], unique=False
            )
