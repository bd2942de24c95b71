"""Webhooks: the list, create (the signing secret in a show-once dialog), and one webhook's
page: edit its URL, events and enabled state, roll its secret, send a test, delete it, and
its deliveries with every attempt and a Redeliver button.

Every form posts to its own URL; a secret is only ever in the one response that made it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse

from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import errors_of, text
from keyplane.domain.errors import Conflict, InvalidInput, KeyplaneError, NotFound
from keyplane.domain.webhooks import ALL, EVENTS, Webhook
from keyplane.services.webhooks import WebhookChanges, WebhookWithSecret

router = APIRouter(prefix="/console/webhooks")

NOTICES = {
    "saved": "The webhook was saved.",
    "deleted": "The webhook was deleted with its deliveries.",
    "test-queued": "A test message was queued; it appears below within seconds.",
    "redelivery-queued": "The message was queued to be sent again.",
}


def _status(exc: KeyplaneError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _events(form: FormData) -> tuple[str, ...]:
    chosen = [v for v in form.getlist("event") if isinstance(v, str) and v]
    return (ALL,) if ALL in chosen else tuple(chosen)


def _webhook(console: Console, webhook_id: str) -> Webhook:
    try:
        return console.kp.webhooks.get(console.principal, webhook_id)
    except NotFound:
        raise PageNotFound from None


@router.get("")
def list_webhooks(console: SignedIn) -> Response:
    console.require("webhooks:read")
    cursor = console.request.query_params.get("cursor") or None
    try:
        page = console.kp.webhooks.page(console.principal, limit=25, cursor=cursor)
    except InvalidInput:
        return RedirectResponse("/console/webhooks", status_code=303)
    notice = NOTICES.get(console.request.query_params.get("notice", ""))
    return console.render("webhooks/list.html", page=page, cursor=cursor, notice=notice)


def _new_form(console: Console, status_code: int = 200, **context: Any) -> Response:
    return console.render(
        "webhooks/new.html",
        status_code,
        events=EVENTS,
        values=context.get("values", {}),
        chosen=context.get("chosen", set()),
        errors=context.get("errors", {}),
    )


@router.get("/new")
def new_webhook(console: SignedIn) -> Response:
    console.require("webhooks:write")
    return _new_form(console)


@router.post("")
def create_webhook(posted: SignedForm) -> Response:
    console, form = posted
    console.require("webhooks:write")
    values = {"url": text(form, "url"), "description": text(form, "description")}
    chosen = _events(form)
    try:
        made = console.kp.webhooks.create(
            console.principal, values["url"], chosen, description=values["description"]
        )
    except KeyplaneError as exc:
        return _new_form(
            console, _status(exc), values=values, chosen=set(chosen), errors=errors_of(exc)
        )
    # The only response that ever carries this secret: the page with the dialog open.
    return _page(console, made.webhook, status_code=201, issued=made)


def _page(
    console: Console,
    webhook: Webhook,
    *,
    status_code: int = 200,
    notice: str | None = None,
    issued: WebhookWithSecret | None = None,
    **forms: Any,
) -> Response:
    cursor = console.request.query_params.get("cursor") or None
    deliveries = console.kp.webhooks.deliveries(
        console.principal, webhook.id, limit=25, cursor=cursor
    )
    return console.render(
        "webhooks/detail.html",
        status_code,
        webhook=webhook,
        events=EVENTS,
        deliveries=deliveries,
        cursor=cursor,
        issued=issued,
        notice=notice,
        values=forms.get("values", {"url": webhook.url, "description": webhook.description}),
        chosen=forms.get("chosen", set(webhook.events)),
        enabled=forms.get("enabled", webhook.enabled),
        errors=forms.get("errors", {}),
    )


@router.get("/{webhook_id}")
def show_webhook(console: SignedIn, webhook_id: str) -> Response:
    console.require("webhooks:read")
    webhook = _webhook(console, webhook_id)
    notice = NOTICES.get(console.request.query_params.get("notice", ""))
    try:
        return _page(console, webhook, notice=notice)
    except InvalidInput:  # a cursor this list never returned
        return RedirectResponse(f"/console/webhooks/{webhook.id}", status_code=303)


@router.post("/{webhook_id}/edit")
def edit_webhook(posted: SignedForm, webhook_id: str) -> Response:
    console, form = posted
    console.require("webhooks:write")
    webhook = _webhook(console, webhook_id)
    values = {"url": text(form, "url"), "description": text(form, "description")}
    chosen = _events(form)
    enabled = text(form, "enabled") == "on"
    changes = WebhookChanges(
        url=values["url"], events=chosen, enabled=enabled, description=values["description"]
    )
    try:
        console.kp.webhooks.update(console.principal, webhook.id, changes)
    except KeyplaneError as exc:
        return _page(
            console,
            webhook,
            status_code=_status(exc),
            values=values,
            chosen=set(chosen),
            enabled=enabled,
            errors=errors_of(exc),
        )
    return RedirectResponse(f"/console/webhooks/{webhook.id}?notice=saved", status_code=303)


@router.get("/{webhook_id}/roll-secret")
def after_roll(webhook_id: str) -> Response:
    """Where a reload lands after the show-once dialog closed: the page, never the secret."""
    return RedirectResponse(f"/console/webhooks/{webhook_id}", status_code=303)


@router.post("/{webhook_id}/roll-secret")
def roll_secret(posted: SignedForm, webhook_id: str) -> Response:
    console = posted.console
    console.require("webhooks:write")
    try:
        rolled = console.kp.webhooks.roll_secret(console.principal, webhook_id)
    except NotFound:
        raise PageNotFound from None
    return _page(console, rolled.webhook, status_code=201, issued=rolled)


@router.post("/{webhook_id}/test")
def send_test(posted: SignedForm, webhook_id: str) -> Response:
    console = posted.console
    console.require("webhooks:write")
    webhook = _webhook(console, webhook_id)
    try:
        console.kp.webhooks.test(console.principal, webhook.id)
    except Conflict as exc:
        return _page(console, webhook, status_code=409, errors={"actions": str(exc)})
    return RedirectResponse(f"/console/webhooks/{webhook.id}?notice=test-queued", status_code=303)


@router.post("/{webhook_id}/deliveries/{delivery_id}/redeliver")
def redeliver(posted: SignedForm, webhook_id: str, delivery_id: str) -> Response:
    console = posted.console
    console.require("webhooks:write")
    webhook = _webhook(console, webhook_id)
    try:
        console.kp.webhooks.redeliver(console.principal, webhook.id, delivery_id)
    except NotFound:
        raise PageNotFound from None
    except Conflict as exc:
        return _page(console, webhook, status_code=409, errors={"actions": str(exc)})
    return RedirectResponse(
        f"/console/webhooks/{webhook.id}?notice=redelivery-queued", status_code=303
    )


@router.post("/{webhook_id}/delete")
def delete_webhook(posted: SignedForm, webhook_id: str) -> Response:
    console = posted.console
    console.require("webhooks:delete")
    try:
        console.kp.webhooks.delete(console.principal, webhook_id)
    except NotFound:
        raise PageNotFound from None
    return RedirectResponse("/console/webhooks?notice=deleted", status_code=303)
