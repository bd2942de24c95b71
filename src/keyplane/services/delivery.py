"""The webhook delivery job: sends the outbox's due messages, records every attempt, tries
failures again with backoff and disables an endpoint that has failed for five days.

Each round claims due messages in a short transaction (a lease, FOR UPDATE SKIP LOCKED on
PostgreSQL, the write lock on SQLite), sends outside any transaction, then records each
attempt in a transaction of its own, provided the message is still under that lease: a
redelivery during the attempt ends the lease, and wins (the attempt is listed, the message
stays queued to be sent again). Different endpoints are sent to in parallel on a small
thread pool, one endpoint's messages in order, so one slow endpoint (its 10 s timeout)
never holds up the others.

A runner that dies between the claim and the record lets go when the lease ends: the
message is sent again (receivers drop duplicates by ``webhook-id``). Nothing is lost by a
crash: the message was committed with the change that raised it, and stays pending until
an attempt is recorded.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Final

from keyplane.domain.errors import MailUnavailable
from keyplane.domain.ids import new_id
from keyplane.domain.limits import PAGE_MAX
from keyplane.domain.ports import Clock, Mailer, Metrics, Store, Transaction, WebhookSender
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.tokens import KeyHasher
from keyplane.domain.webhooks import (
    DISABLE_AFTER,
    EXCERPT_MAX,
    RETRY_FOR,
    Outcome,
    Webhook,
    WebhookAttempt,
    WebhookMessage,
    headers,
    retry_delay,
)
from keyplane.metrics import NullMetrics
from keyplane.services.common import Principal, record

log = logging.getLogger(__name__)

LEASE: Final = timedelta(seconds=60)
_SYSTEM_NAME: Final = "webhook delivery"


class WebhookDeliveryJob:
    """``webhook-delivery``: every second, so a message's first attempt follows its change
    within about a second."""

    name: Final = "webhook-delivery"

    def __init__(
        self,
        store: Store,
        hasher: KeyHasher,
        sender: WebhookSender,
        mailer: Mailer,
        *,
        stamp: Clock,
        interval: float = 1.0,
        batch: int = 50,
        workers: int = 8,
        metrics: Metrics | None = None,
    ) -> None:
        self._store = store
        self._metrics = metrics or NullMetrics()
        self._hasher = hasher
        self._sender = sender
        self._mailer = mailer
        # webhook-timestamp is the real time of sending, whatever clock schedules the job:
        # receivers compare it with their own clock (Standard Webhooks' replay window), and
        # tests move the job's clock, never the receiver's.
        self._stamp = stamp
        self._interval = interval
        self._batch = batch
        self._workers = workers

    @property
    def interval(self) -> float:
        return self._interval

    def run(self, now: datetime) -> int:
        return self._send_due(now) + self._notify_owners()

    def _send_due(self, now: datetime) -> int:
        with self._store.read() as tx:
            if not tx.webhooks.any_due(now):
                return 0
        with self._store.transaction() as tx:
            claimed = tx.webhooks.claim(now, lease_until=now + LEASE, limit=self._batch)
        if not claimed:
            return 0
        by_endpoint: dict[str, list[WebhookMessage]] = defaultdict(list)
        endpoints: dict[str, Webhook] = {}
        for message, webhook in claimed:
            by_endpoint[webhook.id].append(message)
            endpoints[webhook.id] = webhook
        groups = [(endpoints[w], messages) for w, messages in by_endpoint.items()]
        if len(groups) == 1:
            return self._deliver(groups[0][0], groups[0][1], now)
        with ThreadPoolExecutor(
            max_workers=min(self._workers, len(groups)), thread_name_prefix="keyplane-webhook"
        ) as pool:
            futures = [pool.submit(self._deliver, w, messages, now) for w, messages in groups]
            return sum(future.result() for future in futures)

    def _deliver(self, webhook: Webhook, messages: Sequence[WebhookMessage], now: datetime) -> int:
        """One endpoint's messages, in order. After a failure the rest are released, not
        sent (nor counted): a failing endpoint costs one timeout per round, not one per
        message, and its other messages are due again at the next round instead of
        waiting for their lease to end. The failed one, tried again after its backoff,
        then comes after them."""
        secrets = [self._hasher.webhook_secret(webhook.id, g) for g in webhook.generations(now)]
        for done, message in enumerate(messages, start=1):
            signed = headers(secrets, message.id, self._stamp(), message.payload)
            outcome = self._sender.send(webhook.url, signed, message.payload)
            if not self._record(webhook, message, outcome, now):
                rest = messages[done:]
                if rest:
                    # One claim, one lease: the round's messages all carry the same.
                    lease = rest[0].lease_until
                    assert lease is not None  # noqa: S101 - claimed messages carry their lease
                    with self._store.transaction() as tx:
                        tx.webhooks.release([m.id for m in rest], lease)
                return done
        return len(messages)

    def _record(
        self, webhook: Webhook, message: WebhookMessage, outcome: Outcome, now: datetime
    ) -> bool:
        """Writes the attempt and its consequences; whether the endpoint took the message."""
        attempt = WebhookAttempt(
            id=new_id("dlv"),
            message_id=message.id,
            webhook_id=webhook.id,
            org_id=webhook.org_id,
            attempted_at=now,
            status_code=outcome.status_code,
            latency_ms=outcome.latency_ms,
            excerpt=outcome.excerpt[:EXCERPT_MAX],
            error=outcome.error[:200] if outcome.error else None,
        )
        lease = message.lease_until
        assert lease is not None  # noqa: S101 - claimed messages carry their lease
        gave_up = now - message.retry_from >= RETRY_FOR
        with self._store.transaction() as tx:
            if outcome.ok:
                tx.webhooks.finish(
                    attempt, lease_until=lease, status="delivered", next_attempt_at=None
                )
                if webhook.failing_since is not None:
                    tx.webhooks.set_failing(webhook.id, None)
            elif gave_up:
                tx.webhooks.finish(
                    attempt, lease_until=lease, status="failed", next_attempt_at=None
                )
            else:
                delay = retry_delay(message.attempt_count + 1)
                tx.webhooks.finish(
                    attempt, lease_until=lease, status="pending", next_attempt_at=now + delay
                )
            if not outcome.ok:
                self._failing(tx, webhook, now)
        # Counted once the attempt is committed (a failed write leaves it to be tried again).
        self._metrics.webhook_delivery(
            "delivered" if outcome.ok else "gave_up" if gave_up else "failed"
        )
        if outcome.ok:
            return True
        log.info(
            "webhook %s: message %s attempt failed (%s)",
            webhook.id,
            message.id,
            outcome.status_code or outcome.error,
        )
        return False

    def _failing(self, tx: Transaction, webhook: Webhook, now: datetime) -> None:
        tx.webhooks.set_failing(webhook.id, now)
        failing_since = webhook.failing_since or now
        if now - failing_since >= DISABLE_AFTER:
            current = tx.webhooks.get(webhook.org_id, webhook.id)
            if current is not None and current.enabled:
                self._disable(tx, current, failing_since, now)

    @staticmethod
    def _disable(tx: Transaction, webhook: Webhook, failing_since: datetime, now: datetime) -> None:
        reason = f"every delivery failed since {failing_since.isoformat()}"
        tx.webhooks.update(
            replace(
                webhook,
                enabled=False,
                disabled_reason=reason[:200],
                notice_due=True,
                updated_at=now,
            )
        )
        system = Principal(
            org_id=webhook.org_id,
            actor_id="system",
            scopes=ScopeSet.full(),
            actor_name=_SYSTEM_NAME,
        )
        record(
            tx,
            system,
            now,
            "webhook.disable",
            "webhook",
            webhook.id,
            target_name=webhook.url,
            reason=reason,
            failing_since=failing_since.isoformat(),
        )

    def _notify_owners(self) -> int:
        """Emails the owners of each endpoint disabled since the last round. The notice is
        a flag on the webhook's row, set in the transaction that disabled it. A runner
        claims it (a conditional update, which one of several runners wins) before it
        emails, and sets it again when the mail server refuses, for the next round: one
        email, never two. A runner that dies between the claim and the email loses that
        email; the audit event and the console's disabled reason stay. Without a mail
        server (KEYPLANE_SMTP_URL unset) the audit event is all there is."""
        with self._store.read() as tx:
            due = tx.webhooks.notices_due(limit=10)
        sent = 0
        for webhook in due:
            with self._store.transaction() as tx:
                if not tx.webhooks.claim_notice(webhook.id):
                    continue  # another runner has it
            if self._mailer.enabled and not self._email(webhook):
                with self._store.transaction() as tx:
                    tx.webhooks.restore_notice(webhook.id)
                continue
            sent += 1
        return sent

    def _email(self, webhook: Webhook) -> bool:
        with self._store.read() as tx:
            owners = [
                u.email
                for u in tx.users.page(webhook.org_id, limit=PAGE_MAX, after=None)
                if u.role == "owner"
            ]
        if not owners:
            return True
        text = (
            f"keyplane disabled the webhook {webhook.id} ({webhook.url}): "
            f"{webhook.disabled_reason or 'its deliveries kept failing'}.\n\n"
            "Its pending messages wait. Fix the endpoint, then enable the webhook again in "
            'the console (Webhooks) or with PATCH /v1/webhooks/{id} {"enabled": true}.\n'
        )
        try:
            self._mailer.send(owners, "A keyplane webhook was disabled", text)
        except MailUnavailable:
            log.warning(
                "webhook %s disabled; its owners' email waits for the next round", webhook.id
            )
            return False
        return True
