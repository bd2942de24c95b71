"""/v1/webhooks: endpoints receiving the organization's events, and their deliveries."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import Services, WebhooksDelete, WebhooksRead, WebhooksWrite, no_store
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.api.schemas.webhooks import (
    DeliveryOut,
    WebhookCreate,
    WebhookCreated,
    WebhookOut,
    WebhookUpdate,
)
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.services.webhooks import WebhookChanges

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


@router.post("", status_code=201, responses=problems(422), summary="Create a webhook")
def create_webhook(
    body: WebhookCreate, principal: WebhooksWrite, kp: Services, response: Response
) -> WebhookCreated:
    """Adds an endpoint. Its signing secret (`whsec_…`) is in this response only: store it
    now. Deliveries are signed per the Standard Webhooks specification."""
    no_store(response)
    made = kp.webhooks.create(
        principal,
        body.url,
        body.events,
        enabled=body.enabled,
        description=body.description,
    )
    return WebhookCreated.with_secret(made.webhook, made.secret)


@router.get("", responses=problems(422), summary="List webhooks")
def list_webhooks(
    principal: WebhooksRead, kp: Services, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Paged[WebhookOut]:
    page = kp.webhooks.page(principal, limit=limit, cursor=cursor)
    return Paged[WebhookOut](
        data=[WebhookOut.of(w) for w in page.items], next_cursor=page.next_cursor
    )


@router.get("/{webhook_id}", responses=problems(404), summary="Read a webhook")
def get_webhook(webhook_id: str, principal: WebhooksRead, kp: Services) -> WebhookOut:
    return WebhookOut.of(kp.webhooks.get(principal, webhook_id))


@router.patch("/{webhook_id}", responses=problems(404, 422), summary="Change a webhook")
def update_webhook(
    webhook_id: str, body: WebhookUpdate, principal: WebhooksWrite, kp: Services
) -> WebhookOut:
    """Changes the URL, events, description or enabled state. Enabling a webhook keyplane
    disabled clears its failure record."""
    changes = changes_from(body, WebhookChanges)
    return WebhookOut.of(kp.webhooks.update(principal, webhook_id, changes))


@router.delete(
    "/{webhook_id}", status_code=204, responses=problems(404), summary="Delete a webhook"
)
def delete_webhook(webhook_id: str, principal: WebhooksDelete, kp: Services) -> Response:
    """Deletes the endpoint with its pending messages and delivery history."""
    kp.webhooks.delete(principal, webhook_id)
    return Response(status_code=204)


@router.post(
    "/{webhook_id}/roll-secret", responses=problems(404), summary="Roll a webhook's secret"
)
def roll_webhook_secret(
    webhook_id: str, principal: WebhooksWrite, kp: Services, response: Response
) -> WebhookCreated:
    """Issues a new signing secret, in this response only. The previous secret keeps
    signing for 24 hours: each delivery carries both signatures meanwhile."""
    no_store(response)
    rolled = kp.webhooks.roll_secret(principal, webhook_id)
    return WebhookCreated.with_secret(rolled.webhook, rolled.secret)


@router.get(
    "/{webhook_id}/deliveries",
    responses=problems(404, 422),
    summary="List a webhook's deliveries",
)
def list_deliveries(
    webhook_id: str,
    principal: WebhooksRead,
    kp: Services,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> Paged[DeliveryOut]:
    """Messages to this endpoint, newest first, each with every attempt (status, latency
    and the start of the response)."""
    page = kp.webhooks.deliveries(principal, webhook_id, limit=limit, cursor=cursor)
    return Paged[DeliveryOut](
        data=[DeliveryOut.of(m) for m in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/{webhook_id}/deliveries/{delivery_id}/redeliver",
    status_code=202,
    responses=problems(404, 409),
    summary="Send a delivery again",
)
def redeliver(
    webhook_id: str, delivery_id: str, principal: WebhooksWrite, kp: Services
) -> DeliveryOut:
    """Queues the message again (same `webhook-id`); the delivery job sends it within
    seconds. 409 while the webhook is disabled."""
    return DeliveryOut.of(kp.webhooks.redeliver(principal, webhook_id, delivery_id))


@router.post(
    "/{webhook_id}/test",
    status_code=202,
    responses=problems(404, 409),
    summary="Send a test message",
)
def send_test(webhook_id: str, principal: WebhooksWrite, kp: Services) -> DeliveryOut:
    """Queues a `webhook.test` message to this endpoint, whatever events it takes. 409
    while the webhook is disabled."""
    return DeliveryOut.of(kp.webhooks.test(principal, webhook_id))
