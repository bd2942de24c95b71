"""Request and response bodies: webhooks and their deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import BaseModel, Field, StrictBool

from keyplane.api.schemas.common import Description, Omit, Request
from keyplane.domain.webhooks import (
    EVENTS,
    EVENTS_MAX,
    URL_MAX,
    Webhook,
    WebhookAttempt,
    WebhookMessage,
)

Url = Annotated[
    str,
    Field(min_length=1, max_length=URL_MAX, examples=["https://example.com/hooks/keyplane"]),
]
Events = Annotated[
    list[Annotated[str, Field(max_length=40)]],
    Field(
        min_length=1,
        max_length=EVENTS_MAX,
        description=f"Event names ({', '.join(EVENTS)}), or `*` for every event.",
        examples=[["key.created", "key.deleted"]],
    ),
]


class WebhookCreate(Request):
    url: Url
    events: Events
    enabled: StrictBool = True
    description: Description = ""


class WebhookUpdate(Request):
    url: Omit[Url] = None
    events: Omit[Events] = None
    enabled: Omit[StrictBool] = None
    description: Omit[Description] = None


class WebhookOut(BaseModel):
    id: str
    url: str
    events: list[str]
    enabled: bool
    description: str
    disabled_reason: str | None = Field(
        description="Why keyplane disabled it (failing for 5 days); null otherwise."
    )
    failing_since: datetime | None
    previous_secret_valid_until: datetime | None = Field(
        description="Until when the secret before the last roll still signs (both are sent)."
    )
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, webhook: Webhook) -> WebhookOut:
        return cls(
            id=webhook.id,
            url=webhook.url,
            events=list(webhook.events),
            enabled=webhook.enabled,
            description=webhook.description,
            disabled_reason=webhook.disabled_reason,
            failing_since=webhook.failing_since,
            previous_secret_valid_until=webhook.previous_secret_until,
            created_by=webhook.created_by,
            created_at=webhook.created_at,
            updated_at=webhook.updated_at,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="The signing secret (`whsec_…`). Shown in this response only, never again."
    )
    warning: str

    @classmethod
    def with_secret(cls, webhook: Webhook, secret: str) -> WebhookCreated:
        return cls(
            **WebhookOut.of(webhook).model_dump(),
            secret=secret,
            warning="Store this signing secret now: it cannot be shown again.",
        )


class AttemptOut(BaseModel):
    id: str
    attempted_at: datetime
    ok: bool
    status_code: int | None = Field(description="The endpoint's HTTP status; null if none.")
    latency_ms: int
    response_excerpt: str = Field(description="The start of the endpoint's response body.")
    error: str | None = Field(description="Why no status came back (timeout, refused address).")

    @classmethod
    def of(cls, attempt: WebhookAttempt) -> AttemptOut:
        return cls(
            id=attempt.id,
            attempted_at=attempt.attempted_at,
            ok=attempt.ok,
            status_code=attempt.status_code,
            latency_ms=attempt.latency_ms,
            response_excerpt=attempt.excerpt,
            error=attempt.error,
        )


class DeliveryOut(BaseModel):
    id: str = Field(description="The message id: the `webhook-id` header of every attempt.")
    event_type: str
    status: str = Field(description="`pending`, `delivered` or `failed` (retries exhausted).")
    payload: dict[str, Any]
    created_at: datetime
    attempt_count: int
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    attempts: list[AttemptOut]

    @classmethod
    def of(cls, message: WebhookMessage) -> DeliveryOut:
        return cls(
            id=message.id,
            event_type=message.event_type,
            status=message.status,
            payload=orjson.loads(message.payload),
            created_at=message.created_at,
            attempt_count=message.attempt_count,
            next_attempt_at=message.next_attempt_at,
            last_attempt_at=message.last_attempt_at,
            delivered_at=message.delivered_at,
            attempts=[AttemptOut.of(a) for a in message.attempts],
        )
