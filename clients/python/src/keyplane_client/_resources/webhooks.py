"""``kp.webhooks``: endpoints receiving the organization's events, and their deliveries
(``/v1/webhooks``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from keyplane_client._models import CreatedWebhook, Delivery, Webhook
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/webhooks", json=body(**fields))


def _page(cursor: str | None, limit: int | None) -> Call:
    return Call("GET", "/v1/webhooks", params={"cursor": cursor, "limit": limit})


def _one(method: str, webhook_id: str, tail: str = "", **fields: Any) -> Call:
    url = path("/v1/webhooks/{}", webhook_id) + tail
    return Call(method, url, json=body(**fields) if fields else None)


def _deliveries(webhook_id: str, cursor: str | None, limit: int | None) -> Call:
    url = path("/v1/webhooks/{}/deliveries", webhook_id)
    return Call("GET", url, params={"cursor": cursor, "limit": limit})


def _redeliver(webhook_id: str, delivery_id: str) -> Call:
    return Call("POST", path("/v1/webhooks/{}/deliveries/{}/redeliver", webhook_id, delivery_id))


class Webhooks:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        enabled: bool | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> CreatedWebhook:
        """An endpoint for ``events`` (or ``["*"]``). The answer's ``.secret``
        (``whsec_…``) signs every delivery and is shown this once."""
        call = _create(url=url, events=events, enabled=enabled, description=description)
        return self._client._request(CreatedWebhook, call)

    def list(self, *, limit: int | None = None) -> Paginator[Webhook]:
        return Paginator(lambda cursor: self._client._request(Page[Webhook], _page(cursor, limit)))

    def get(self, webhook_id: str) -> Webhook:
        return self._client._request(Webhook, _one("GET", webhook_id))

    def update(
        self,
        webhook_id: str,
        *,
        url: str | NotGiven = NOT_GIVEN,
        events: Sequence[str] | NotGiven = NOT_GIVEN,
        enabled: bool | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> Webhook:
        call = _one(
            "PATCH", webhook_id, url=url, events=events, enabled=enabled, description=description
        )
        return self._client._request(Webhook, call)

    def delete(self, webhook_id: str) -> None:
        self._client._request_empty(_one("DELETE", webhook_id))

    def roll_secret(self, webhook_id: str) -> CreatedWebhook:
        """A new signing secret, shown this once; the old one keeps signing for 24 hours."""
        return self._client._request(CreatedWebhook, _one("POST", webhook_id, "/roll-secret"))

    def deliveries(self, webhook_id: str, *, limit: int | None = None) -> Paginator[Delivery]:
        """Messages to the endpoint, newest first, each with every attempt."""
        return Paginator(
            lambda cursor: self._client._request(
                Page[Delivery], _deliveries(webhook_id, cursor, limit)
            )
        )

    def redeliver(self, webhook_id: str, delivery_id: str) -> Delivery:
        """Queues the message again (same ``webhook-id``)."""
        return self._client._request(Delivery, _redeliver(webhook_id, delivery_id))

    def test(self, webhook_id: str) -> Delivery:
        """Queues a ``webhook.test`` message to the endpoint."""
        return self._client._request(Delivery, _one("POST", webhook_id, "/test"))


class AsyncWebhooks:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        url: str,
        events: Sequence[str],
        enabled: bool | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> CreatedWebhook:
        call = _create(url=url, events=events, enabled=enabled, description=description)
        return await self._client._request(CreatedWebhook, call)

    def list(self, *, limit: int | None = None) -> AsyncPaginator[Webhook]:
        async def fetch(cursor: str | None) -> Page[Webhook]:
            return await self._client._request(Page[Webhook], _page(cursor, limit))

        return AsyncPaginator(fetch)

    async def get(self, webhook_id: str) -> Webhook:
        return await self._client._request(Webhook, _one("GET", webhook_id))

    async def update(
        self,
        webhook_id: str,
        *,
        url: str | NotGiven = NOT_GIVEN,
        events: Sequence[str] | NotGiven = NOT_GIVEN,
        enabled: bool | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> Webhook:
        call = _one(
            "PATCH", webhook_id, url=url, events=events, enabled=enabled, description=description
        )
        return await self._client._request(Webhook, call)

    async def delete(self, webhook_id: str) -> None:
        await self._client._request_empty(_one("DELETE", webhook_id))

    async def roll_secret(self, webhook_id: str) -> CreatedWebhook:
        return await self._client._request(CreatedWebhook, _one("POST", webhook_id, "/roll-secret"))

    def deliveries(self, webhook_id: str, *, limit: int | None = None) -> AsyncPaginator[Delivery]:
        async def fetch(cursor: str | None) -> Page[Delivery]:
            return await self._client._request(
                Page[Delivery], _deliveries(webhook_id, cursor, limit)
            )

        return AsyncPaginator(fetch)

    async def redeliver(self, webhook_id: str, delivery_id: str) -> Delivery:
        return await self._client._request(Delivery, _redeliver(webhook_id, delivery_id))

    async def test(self, webhook_id: str) -> Delivery:
        return await self._client._request(Delivery, _one("POST", webhook_id, "/test"))
