"""Audit events gain actor, target and request fields, ``changes``, and a hash chain.

Existing events are chained by this migration, per organization in (created_at, id) order,
with the canonical form of keyplane.domain.audit (frozen: a changed form would need a new
version, so importing it here stays correct). Their actor type is read from the actor id's
prefix; names, client address and user agent were never recorded, so they stay null.
Each organization's chain head row is written last.

Downgrade drops the new columns and the chain heads: the events themselves stay.

Revision ID: 0005_audit
Revises: 0005_usage
Create Date: 2026-11-30 17:20:00
"""

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from keyplane.domain.audit import GENESIS, actor_type, event_hash

revision = "0005_audit"
down_revision = "0005_usage"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("actor_type", sa.String(length=10), nullable=True))
        batch_op.add_column(sa.Column("actor_name", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("target_name", sa.String(length=254), nullable=True))
        batch_op.add_column(sa.Column("client_ip", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("user_agent", sa.String(length=512), nullable=True))
        batch_op.add_column(sa.Column("changes", _JSON, nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("prev_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("hash", sa.String(length=64), nullable=True))
    heads = op.create_table(
        "audit_chain_heads",
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("org_id", name=op.f("pk_audit_chain_heads")),
    )
    _chain_existing(heads)
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        for name in ("actor_type", "changes", "seq", "prev_hash", "hash"):
            batch_op.alter_column(name, nullable=False)
        batch_op.create_unique_constraint(
            batch_op.f("uq_audit_events_org_id_seq"), ["org_id", "seq"]
        )


def _chain_existing(heads: sa.Table) -> None:
    bind = op.get_bind()
    events = sa.table(
        "audit_events",
        *(
            sa.column(name)
            for name in ("id", "org_id", "actor", "action", "target_type", "target_id")
        ),
        sa.column("details", _JSON),
        sa.column("created_at", sa.DateTime(timezone=True)),
        sa.column("changes", _JSON),
        *(sa.column(name) for name in ("actor_type", "seq", "prev_hash", "hash")),
    )
    rows = bind.execute(
        sa.select(events).order_by(events.c.org_id, events.c.created_at, events.c.id)
    ).mappings()
    last: dict[str, tuple[int, str]] = {}
    for row in list(rows):
        seq, prev_hash = last.get(row["org_id"], (0, GENESIS))
        values: dict[str, Any] = {
            **row,
            "created_at": _utc(row["created_at"]),
            "actor_type": actor_type(row["actor"]),
            "actor_name": None,
            "target_name": None,
            "client_ip": None,
            "user_agent": None,
            "changes": {},
            "seq": seq + 1,
            "prev_hash": prev_hash,
        }
        digest = event_hash(values)
        bind.execute(
            sa.update(events)
            .where(events.c.id == row["id"])
            .values(
                actor_type=values["actor_type"],
                changes={},
                seq=seq + 1,
                prev_hash=prev_hash,
                hash=digest,
            )
        )
        last[row["org_id"]] = (seq + 1, digest)
    if last:
        op.bulk_insert(
            heads, [{"org_id": org, "seq": s, "hash": h} for org, (s, h) in last.items()]
        )


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def downgrade() -> None:
    op.drop_table("audit_chain_heads")
    with op.batch_alter_table("audit_events", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_events_org_id_seq"), type_="unique")
        for name in (
            "hash",
            "prev_hash",
            "seq",
            "changes",
            "user_agent",
            "client_ip",
            "target_name",
            "actor_name",
            "actor_type",
        ):
            batch_op.drop_column(name)
