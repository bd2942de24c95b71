"""Webhook endpoints, the outbox of messages and the attempts at delivering them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, delete, insert, or_, select, update

from keyplane.domain.webhooks import (
    Webhook,
    WebhookAttempt,
    WebhookMessage,
    subscribes,
)
from keyplane.storage.rows import fields as _fields
from keyplane.storage.tables import webhook_attempts, webhook_messages, webhooks

_MUTABLE = (
    "url",
    "events",
    "enabled",
    "description",
    "secret_generation",
    "previous_secret_until",
    "failing_since",
    "disabled_reason",
    "notice_due",
    "updated_at",
)


class SqlWebhookRepository:
    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def get(self, org_id: str, webhook_id: str) -> Webhook | None:
        query = select(webhooks).where(webhooks.c.org_id == org_id, webhooks.c.id == webhook_id)
        row = self._conn.execute(query).first()
        return _webhook(row) if row else None

    def page(self, org_id: str, *, limit: int, after: str | None) -> list[Webhook]:
        query = select(webhooks).where(webhooks.c.org_id == org_id)
        if after is not None:
            query = query.where(webhooks.c.id < after)
        rows = self._conn.execute(query.order_by(webhooks.c.id.desc()).limit(limit))
        return [_webhook(row) for row in rows]

    def insert(self, webhook: Webhook) -> None:
        values = _fields(webhook)
        values["events"] = list(webhook.events)
        self._conn.execute(insert(webhooks).values(**values))

    def update(self, webhook: Webhook) -> None:
        values = {k: v for k, v in _fields(webhook).items() if k in _MUTABLE}
        values["events"] = list(webhook.events)
        query = update(webhooks).where(
            webhooks.c.org_id == webhook.org_id, webhooks.c.id == webhook.id
        )
        self._conn.execute(query.values(**values))

    def delete(self, org_id: str, webhook_id: str) -> None:
        # Explicit, as for apps: SQLite enforces ON DELETE CASCADE only with a pragma.
        messages = select(webhook_messages.c.id).where(webhook_messages.c.webhook_id == webhook_id)
        self._conn.execute(
            delete(webhook_attempts).where(webhook_attempts.c.message_id.in_(messages))
        )
        self._conn.execute(
            delete(webhook_messages).where(webhook_messages.c.webhook_id == webhook_id)
        )
        self._conn.execute(
            delete(webhooks).where(webhooks.c.org_id == org_id, webhooks.c.id == webhook_id)
        )

    def subscribed(self, org_id: str, event_type: str) -> list[str]:
        # Two columns of the organization's few endpoints, by the (org_id, id) index; the
        # events are matched here, the same way on both databases.
        query = select(webhooks.c.id, webhooks.c.events).where(
            webhooks.c.org_id == org_id, webhooks.c.enabled.is_(True)
        )
        return [row.id for row in self._conn.execute(query) if subscribes(row.events, event_type)]

    def enqueue(self, messages: Sequence[WebhookMessage]) -> None:
        if messages:
            self._conn.execute(insert(webhook_messages), [_message_values(m) for m in messages])

    def messages(
        self, org_id: str, webhook_id: str, *, limit: int, after: str | None
    ) -> list[WebhookMessage]:
        query = select(webhook_messages).where(
            webhook_messages.c.org_id == org_id, webhook_messages.c.webhook_id == webhook_id
        )
        if after is not None:
            query = query.where(webhook_messages.c.id < after)
        rows = list(self._conn.execute(query.order_by(webhook_messages.c.id.desc()).limit(limit)))
        attempts = self._attempts([row.id for row in rows])
        return [_message(row, attempts.get(row.id, ())) for row in rows]

    def get_message(self, org_id: str, webhook_id: str, message_id: str) -> WebhookMessage | None:
        query = select(webhook_messages).where(
            webhook_messages.c.org_id == org_id,
            webhook_messages.c.webhook_id == webhook_id,
            webhook_messages.c.id == message_id,
        )
        row = self._conn.execute(query).first()
        if row is None:
            return None
        return _message(row, self._attempts([row.id]).get(row.id, ()))

    def requeue(self, message_id: str, now: datetime) -> None:
        self._conn.execute(
            update(webhook_messages)
            .where(webhook_messages.c.id == message_id)
            # The lease goes too: an attempt in flight no longer owns the message, so when
            # it finishes it records itself without overwriting this (see ``finish``).
            .values(status="pending", next_attempt_at=now, retry_from=now, lease_until=None)
        )

    def any_due(self, now: datetime) -> bool:
        query = _due(select(webhook_messages.c.id), now).limit(1)
        return self._conn.execute(query).first() is not None

    def claim(
        self, now: datetime, *, lease_until: datetime, limit: int
    ) -> list[tuple[WebhookMessage, Webhook]]:
        m = webhook_messages.c
        columns = select(webhook_messages, *[c.label(f"w_{c.name}") for c in webhooks.c])
        due = (
            _due(columns, now)
            .order_by(m.next_attempt_at, m.id)
            .limit(limit)
            # PostgreSQL: rows another runner is claiming are skipped, not waited for.
            # SQLite ignores the clause; its write lock serialises runners.
            .with_for_update(of=webhook_messages, skip_locked=True)
        )
        rows = list(self._conn.execute(due))
        if not rows:
            return []
        self._conn.execute(
            update(webhook_messages)
            .where(m.id.in_([row.id for row in rows]))
            .values(lease_until=lease_until)
        )
        claimed = []
        for row in rows:
            mapping = row._mapping
            endpoint = {c.name: mapping[f"w_{c.name}"] for c in webhooks.c}
            endpoint["events"] = tuple(endpoint["events"])
            message = replace(_message(row, ()), lease_until=lease_until)
            claimed.append((message, Webhook(**endpoint)))
        return claimed

    def finish(
        self,
        attempt: WebhookAttempt,
        *,
        lease_until: datetime,
        status: str,
        next_attempt_at: datetime | None,
    ) -> bool:
        m = webhook_messages.c
        owned = self._conn.execute(
            update(webhook_messages)
            .where(m.id == attempt.message_id, m.lease_until == lease_until)
            .values(
                status=status,
                next_attempt_at=next_attempt_at,
                attempt_count=m.attempt_count + 1,
                last_attempt_at=attempt.attempted_at,
                delivered_at=attempt.attempted_at if status == "delivered" else m.delivered_at,
                lease_until=None,
            )
        ).rowcount
        if not owned:
            # Redelivered (or, after a lease ran out, claimed again) while in flight: the
            # attempt happened and is listed, but the message's state is the newer one's.
            found = self._conn.execute(
                update(webhook_messages)
                .where(m.id == attempt.message_id)
                .values(attempt_count=m.attempt_count + 1, last_attempt_at=attempt.attempted_at)
            ).rowcount
            if not found:  # deleted with its webhook while the attempt was in flight
                return False
        self._conn.execute(insert(webhook_attempts).values(**_fields(attempt)))
        return bool(owned)

    def release(self, message_ids: Sequence[str], lease_until: datetime) -> None:
        m = webhook_messages.c
        if message_ids:
            self._conn.execute(
                update(webhook_messages)
                .where(m.id.in_(message_ids), m.lease_until == lease_until)
                .values(lease_until=None)
            )

    def set_failing(self, webhook_id: str, since: datetime | None) -> None:
        w = webhooks.c
        query = update(webhooks).where(w.id == webhook_id)
        if since is None:
            self._conn.execute(query.values(failing_since=None))
        else:
            self._conn.execute(query.where(w.failing_since.is_(None)).values(failing_since=since))

    def notices_due(self, limit: int) -> list[Webhook]:
        query = (
            select(webhooks)
            .where(webhooks.c.notice_due.is_(True))
            .order_by(webhooks.c.id)
            .limit(limit)
        )
        return [_webhook(row) for row in self._conn.execute(query)]

    def claim_notice(self, webhook_id: str) -> bool:
        w = webhooks.c
        taken = self._conn.execute(
            update(webhooks)
            .where(w.id == webhook_id, w.notice_due.is_(True))
            .values(notice_due=False)
        )
        return bool(taken.rowcount)

    def restore_notice(self, webhook_id: str) -> None:
        w = webhooks.c
        self._conn.execute(
            update(webhooks).where(w.id == webhook_id, w.enabled.is_(False)).values(notice_due=True)
        )

    def _attempts(self, message_ids: list[str]) -> dict[str, list[WebhookAttempt]]:
        found: dict[str, list[WebhookAttempt]] = defaultdict(list)
        if not message_ids:
            return found
        query = (
            select(webhook_attempts)
            .where(webhook_attempts.c.message_id.in_(message_ids))
            .order_by(webhook_attempts.c.id)
        )
        for row in self._conn.execute(query):
            found[row.message_id].append(WebhookAttempt(**row._mapping))
        return found


def _due(query: Select[Any], now: datetime) -> Select[Any]:
    """Messages to send now: pending, due, not leased, to an enabled endpoint."""
    m = webhook_messages.c
    return query.join(webhooks, webhooks.c.id == m.webhook_id).where(
        m.status == "pending",
        m.next_attempt_at <= now,
        or_(m.lease_until.is_(None), m.lease_until <= now),
        webhooks.c.enabled.is_(True),
    )


def _webhook(row: Row[Any]) -> Webhook:
    values = dict(row._mapping)
    values["events"] = tuple(values["events"])
    return Webhook(**values)


def _message_values(message: WebhookMessage) -> dict[str, Any]:
    values = _fields(message)
    del values["attempts"]
    values["payload"] = message.payload.decode()
    return values


def _message(row: Row[Any], attempts: Sequence[WebhookAttempt]) -> WebhookMessage:
    mapping = row._mapping
    values = {c.name: mapping[c.name] for c in webhook_messages.c}
    values["payload"] = values["payload"].encode()
    return WebhookMessage(**values, attempts=tuple(attempts))
