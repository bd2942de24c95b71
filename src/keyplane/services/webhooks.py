"""Webhooks: endpoints that receive the organization's events, their signing secrets and
their deliveries. The delivery itself is a job (services/delivery.py), never a request.

A signing secret is shown once, at creation and at each roll, and never stored: it is
derived from the server secret, the endpoint's id and its secret generation
(KeyHasher.webhook_secret), so the database holds a number, not a secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from keyplane.domain.audit import actor_type
from keyplane.domain.errors import Conflict, NotFound
from keyplane.domain.ids import new_id
from keyplane.domain.models import Page
from keyplane.domain.ports import Clock, Store, Transaction
from keyplane.domain.tokens import KeyHasher
from keyplane.domain.webhooks import (
    ROLL_GRACE,
    Webhook,
    WebhookMessage,
    check_events,
    check_url,
    payload_of_test,
)
from keyplane.services.common import (
    UNSET,
    Principal,
    _Unset,
    check_cursor,
    check_description,
    check_limit,
    load_org,
    paginate,
    record,
)


@dataclass(frozen=True, slots=True)
class WebhookChanges:
    url: str | _Unset = UNSET
    events: tuple[str, ...] | _Unset = UNSET
    enabled: bool | _Unset = UNSET
    description: str | _Unset = UNSET


@dataclass(frozen=True, slots=True)
class WebhookWithSecret:
    """An endpoint and its current signing secret: the one time the secret is shown."""

    webhook: Webhook
    secret: str


class WebhookService:
    def __init__(
        self, store: Store, hasher: KeyHasher, clock: Clock, *, allow_private: bool
    ) -> None:
        self._store = store
        self._hasher = hasher
        self._clock = clock
        self._allow_private = allow_private

    def create(
        self,
        principal: Principal,
        url: str,
        events: Sequence[str],
        *,
        enabled: bool = True,
        description: str = "",
    ) -> WebhookWithSecret:
        now = self._clock()
        webhook = Webhook(
            id=new_id("whk"),
            org_id=principal.org_id,
            url=check_url(url, allow_private=self._allow_private),
            events=check_events(events),
            enabled=enabled,
            description=check_description(description),
            created_by=principal.actor_id,
            created_at=now,
            updated_at=now,
        )
        with self._store.transaction() as tx:
            load_org(tx, principal.org_id)
            tx.webhooks.insert(webhook)
            record(
                tx,
                principal,
                now,
                "webhook.create",
                "webhook",
                webhook.id,
                target_name=webhook.url,
                url=webhook.url,
                events=list(webhook.events),
                enabled=webhook.enabled,
            )
        return WebhookWithSecret(webhook, self._secret(webhook, webhook.secret_generation))

    def get(self, principal: Principal, webhook_id: str) -> Webhook:
        with self._store.read() as tx:
            return _webhook(tx, principal.org_id, webhook_id)

    def page(self, principal: Principal, *, limit: int, cursor: str | None = None) -> Page[Webhook]:
        check_limit(limit)
        after = check_cursor(cursor, "whk")
        with self._store.read() as tx:
            return paginate(
                lambda n: tx.webhooks.page(principal.org_id, limit=n, after=after),
                limit,
                lambda w: w.id,
            )

    def update(self, principal: Principal, webhook_id: str, changes: WebhookChanges) -> Webhook:
        now = self._clock()
        with self._store.transaction() as tx:
            webhook = _webhook(tx, principal.org_id, webhook_id)
            updated = webhook
            if not isinstance(changes.url, _Unset):
                updated = replace(
                    updated, url=check_url(changes.url, allow_private=self._allow_private)
                )
            if not isinstance(changes.events, _Unset):
                updated = replace(updated, events=check_events(changes.events))
            if not isinstance(changes.description, _Unset):
                updated = replace(updated, description=check_description(changes.description))
            if not isinstance(changes.enabled, _Unset):
                updated = replace(updated, enabled=changes.enabled)
                if changes.enabled and not webhook.enabled:
                    # Enabled again by a person: its failures so far are forgiven.
                    updated = replace(
                        updated, failing_since=None, disabled_reason=None, notice_due=False
                    )
            updated = replace(updated, updated_at=now)
            tx.webhooks.update(updated)
            record(
                tx,
                principal,
                now,
                "webhook.update",
                "webhook",
                webhook.id,
                target_name=updated.url,
                changes={
                    "url": (webhook.url, updated.url),
                    "events": (list(webhook.events), list(updated.events)),
                    "enabled": (webhook.enabled, updated.enabled),
                    "description": (webhook.description, updated.description),
                },
            )
            return updated

    def delete(self, principal: Principal, webhook_id: str) -> None:
        now = self._clock()
        with self._store.transaction() as tx:
            webhook = _webhook(tx, principal.org_id, webhook_id)
            tx.webhooks.delete(principal.org_id, webhook_id)
            record(
                tx,
                principal,
                now,
                "webhook.delete",
                "webhook",
                webhook.id,
                target_name=webhook.url,
                url=webhook.url,
            )

    def roll_secret(self, principal: Principal, webhook_id: str) -> WebhookWithSecret:
        """A new signing secret; the previous one keeps signing beside it for 24 hours (both
        signatures are sent), so receivers can switch without losing a message. Rolling
        again within those hours retires the oldest at once: two secrets at most."""
        now = self._clock()
        with self._store.transaction() as tx:
            webhook = _webhook(tx, principal.org_id, webhook_id)
            rolled = replace(
                webhook,
                secret_generation=webhook.secret_generation + 1,
                previous_secret_until=now + ROLL_GRACE,
                updated_at=now,
            )
            tx.webhooks.update(rolled)
            record(
                tx,
                principal,
                now,
                "webhook.roll_secret",
                "webhook",
                webhook.id,
                target_name=webhook.url,
                generation=rolled.secret_generation,
                previous_valid_until=rolled.previous_secret_until.isoformat()
                if rolled.previous_secret_until
                else None,
            )
        return WebhookWithSecret(rolled, self._secret(rolled, rolled.secret_generation))

    def deliveries(
        self, principal: Principal, webhook_id: str, *, limit: int, cursor: str | None = None
    ) -> Page[WebhookMessage]:
        check_limit(limit)
        after = check_cursor(cursor, "msg")
        with self._store.read() as tx:
            _webhook(tx, principal.org_id, webhook_id)
            return paginate(
                lambda n: tx.webhooks.messages(principal.org_id, webhook_id, limit=n, after=after),
                limit,
                lambda m: m.id,
            )

    def redeliver(self, principal: Principal, webhook_id: str, message_id: str) -> WebhookMessage:
        """Sends a message again, with the same ``webhook-id`` (receivers that already have
        it can tell), as soon as the delivery job next runs; a fresh retry budget."""
        now = self._clock()
        with self._store.transaction() as tx:
            webhook = _enabled(tx, principal.org_id, webhook_id)
            message = tx.webhooks.get_message(principal.org_id, webhook_id, message_id)
            if message is None:
                raise NotFound("delivery", message_id)
            tx.webhooks.requeue(message.id, now)
            record(
                tx,
                principal,
                now,
                "webhook.redeliver",
                "webhook",
                webhook.id,
                target_name=webhook.url,
                message_id=message.id,
                event_type=message.event_type,
            )
            found = tx.webhooks.get_message(principal.org_id, webhook_id, message_id)
            assert found is not None  # noqa: S101 - read back in the same transaction
            return found

    def test(self, principal: Principal, webhook_id: str) -> WebhookMessage:
        """Queues a ``webhook.test`` message to this endpoint, whatever events it takes."""
        now = self._clock()
        with self._store.transaction() as tx:
            webhook = _enabled(tx, principal.org_id, webhook_id)
            actor = {
                "type": actor_type(principal.actor_id),
                "id": principal.actor_id,
                "name": principal.actor_name,
            }
            message = WebhookMessage(
                id=new_id("msg"),
                org_id=webhook.org_id,
                webhook_id=webhook.id,
                event_type="webhook.test",
                payload=payload_of_test(webhook.id, webhook.org_id, actor, now),
                status="pending",
                created_at=now,
                retry_from=now,
                next_attempt_at=now,
            )
            tx.webhooks.enqueue([message])
            record(
                tx,
                principal,
                now,
                "webhook.test",
                "webhook",
                webhook.id,
                target_name=webhook.url,
                message_id=message.id,
            )
            return message

    def _secret(self, webhook: Webhook, generation: int) -> str:
        return self._hasher.webhook_secret(webhook.id, generation)


def _webhook(tx: Transaction, org_id: str, webhook_id: str) -> Webhook:
    webhook = tx.webhooks.get(org_id, webhook_id)
    if webhook is None:
        raise NotFound("webhook", webhook_id)
    return webhook


def _enabled(tx: Transaction, org_id: str, webhook_id: str) -> Webhook:
    webhook = _webhook(tx, org_id, webhook_id)
    if not webhook.enabled:
        raise Conflict(
            "This webhook is disabled: enable it (PATCH enabled=true) before sending to it.",
            field="enabled",
        )
    return webhook
