"""Invalidation notices recorded in a unit of work (the Invalidations port).

On PostgreSQL each notice is also sent with ``pg_notify`` on the transaction's own
connection at once: PostgreSQL holds it until COMMIT and delivers it to every listening
session then, and drops it on ROLLBACK, so no node ever hears of a change that did not
happen, or misses one that did because this process died between COMMIT and a publish.
That is why the channel is PostgreSQL even when KEYPLANE_REDIS_URL is set: a Redis
PUBLISH is not part of the transaction, it can only go before COMMIT (announcing a change
that may still roll back, and that other nodes could reload before it is visible) or after
it (lost with this process). storage/listener.py receives the notices.

On SQLite there is one process, and the notices only reach this process's cache, when
the store commits (SqlStore.transaction).
"""

from __future__ import annotations

import time
from typing import Final

from sqlalchemy import Connection, text

from keyplane.domain.invalidation import Kind, notice, stamped

CHANNEL: Final = "keyplane_cache"
_NOTIFY: Final = text("SELECT pg_notify(:channel, :payload)")


class SqlInvalidations:
    def __init__(self, conn: Connection, *, notify: bool) -> None:
        self._conn = conn
        self._notify = notify
        self.notices: list[str] = []

    def key(self, key_id: str, org_id: str | None = None) -> None:
        self._add("key", key_id, org_id)

    def app(self, app_id: str, org_id: str | None = None) -> None:
        self._add("app", app_id, org_id)

    def profile(self, profile_id: str, org_id: str | None = None) -> None:
        self._add("profile", profile_id, org_id)

    def org(self, org_id: str) -> None:
        self._add("org", org_id, org_id)

    def signing_keys(self) -> None:
        self._add("signing", "keys", None)

    def _add(self, kind: Kind, ident: str, org_id: str | None) -> None:
        payload = notice(kind, ident, org_id)
        if payload in self.notices:
            return
        self.notices.append(payload)
        if self._notify:
            # Stamped now, a moment before COMMIT (a transaction's end is not known inside
            # it): the receivers' lag metric includes the rest of this transaction.
            sent = stamped(payload, time.time())
            self._conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": sent})
