"""Facts about this installation kept in its database: the secret check value."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import IntegrityError

from keyplane.storage.tables import instance_settings

SECRET_CHECK: Final = "secret_check"  # noqa: S105 - a row name, not a secret
_QUERY: Final = select(instance_settings.c.value).where(instance_settings.c.name == SECRET_CHECK)


def claim_secret_check(engine: Engine, value: str) -> str:
    """The secret check value this database holds, storing ``value`` first if it holds none.

    On SQLite the write transaction serialises two first starts; on PostgreSQL two nodes'
    first starts may both insert: one wins, the other reads the winner's value.
    """
    try:
        with engine.begin() as conn:
            stored: str | None = conn.scalar(_QUERY)
            if stored is not None:
                return stored
            values = {"name": SECRET_CHECK, "value": value, "created_at": datetime.now(UTC)}
            conn.execute(insert(instance_settings).values(**values))
            return value
    except IntegrityError:
        with engine.begin() as conn:
            winner: str = conn.execute(_QUERY).scalar_one()
            return winner
