"""SqlSigningKeyRepository: the token signing keys (tables.signing_keys)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Connection, insert, select, update

from keyplane.domain.oauth import SigningKey
from keyplane.storage.tables import signing_keys

_LIVE = ("current", "previous")


class SqlSigningKeyRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def live(self) -> list[SigningKey]:
        query = select(signing_keys).where(signing_keys.c.state.in_(_LIVE))
        return [_key(row) for row in self._conn.execute(query.order_by(signing_keys.c.kid))]

    def all(self) -> list[SigningKey]:
        query = select(signing_keys).order_by(signing_keys.c.kid)
        return [_key(row) for row in self._conn.execute(query)]

    def insert(self, key: SigningKey) -> None:
        self._conn.execute(
            insert(signing_keys).values(
                kid=key.kid,
                algorithm=key.algorithm,
                private_key=key.sealed_private,
                public_jwk=orjson.dumps(dict(key.public_jwk)).decode(),
                state=key.state,
                created_at=key.created_at,
                rotated_at=key.rotated_at,
            )
        )

    def demote_current(self, now: datetime) -> str | None:
        kid: str | None = self._conn.scalar(
            update(signing_keys)
            .where(signing_keys.c.state == "current")
            .values(state="previous", rotated_at=now)
            .returning(signing_keys.c.kid)
        )
        return kid

    def retire_previous(self, rotated_before: datetime) -> list[str]:
        rows = self._conn.execute(
            update(signing_keys)
            .where(signing_keys.c.state == "previous", signing_keys.c.rotated_at < rotated_before)
            .values(state="retired")
            .returning(signing_keys.c.kid)
        )
        return sorted(str(row.kid) for row in rows)


def _key(row: Any) -> SigningKey:
    return SigningKey(
        kid=row.kid,
        algorithm=row.algorithm,
        sealed_private=row.private_key,
        public_jwk=orjson.loads(row.public_jwk),
        state=row.state,
        created_at=row.created_at,
        rotated_at=row.rotated_at,
    )
