"""``keyplane webhooks``: endpoints that receive the organization's events, on a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from keyplane.cli.parsing import scopes_of as list_of
from keyplane.cli.remote import Remote, Yes, connected

if TYPE_CHECKING:
    from keyplane_client import CreatedWebhook, Webhook

webhooks = typer.Typer(help="Webhooks: where keyplane sends events.", no_args_is_help=True)

WebhookId = Annotated[str, typer.Argument(metavar="WEBHOOK_ID", help="The webhook's id.")]
Description = Annotated[str | None, typer.Option("--description", metavar="TEXT")]
SHOWN_ONCE = (
    "This is the only time the signing secret is shown: store it where your receiver "
    "reads it, to verify each delivery."
)


@webhooks.command("create")
@connected
def create(
    remote: Remote,
    url: Annotated[str, typer.Argument(metavar="URL", help="Where to send the events.")],
    events: Annotated[
        list[str],
        typer.Option(
            "--events",
            metavar="EVENTS",
            help="Event names, comma-separated (key.created,key.deleted), or * for all.",
        ),
    ],
    description: Description = None,
    disabled: Annotated[
        bool, typer.Option("--disabled", help="Create it disabled (nothing is sent yet).")
    ] = False,
) -> None:
    """Add an endpoint. Its signing secret (whsec_…) is printed this once."""
    fields: dict[str, Any] = {"enabled": not disabled}
    if description is not None:
        fields["description"] = description
    created = remote.client.webhooks.create(url=url, events=list_of(events), **fields)
    _show_secret(remote, created)


@webhooks.command("list")
@connected
def list_webhooks(remote: Remote) -> None:
    """List every webhook."""
    found = list(remote.client.webhooks.list(limit=100))
    remote.out.table(
        found,
        ["ID", "URL", "EVENTS", "ENABLED", "FAILING SINCE"],
        lambda w: [w.id, w.url, w.events, w.enabled, w.failing_since],
        empty="no webhooks",
    )


@webhooks.command("show")
@connected
def show(remote: Remote, webhook_id: WebhookId) -> None:
    """Show a webhook (never its secret)."""
    webhook = remote.client.webhooks.get(webhook_id)
    remote.out.item(webhook, _fields(webhook))


@webhooks.command("update")
@connected
def update(
    remote: Remote,
    webhook_id: WebhookId,
    url: Annotated[
        str | None, typer.Option("--endpoint-url", metavar="URL", help="A new URL to send to.")
    ] = None,
    events: Annotated[
        list[str] | None, typer.Option("--events", metavar="EVENTS", help="New event names.")
    ] = None,
    description: Description = None,
    enabled: Annotated[
        bool | None,
        typer.Option("--enable/--disable", help="Turn deliveries on or off.", show_default=False),
    ] = None,
) -> None:
    """Change a webhook's URL, events, description, or whether it is enabled (enabling
    clears the failure record of a webhook keyplane disabled)."""
    fields: dict[str, Any] = {}
    if url is not None:
        fields["url"] = url
    if events:
        fields["events"] = list_of(events)
    if description is not None:
        fields["description"] = description
    if enabled is not None:
        fields["enabled"] = enabled
    if not fields:
        raise typer.BadParameter("nothing to change: give at least one option")
    webhook = remote.client.webhooks.update(webhook_id, **fields)
    remote.out.item(webhook, _fields(webhook))


@webhooks.command("delete")
@connected
def delete(remote: Remote, webhook_id: WebhookId, yes: Yes = False) -> None:
    """Delete a webhook with its pending messages and delivery history."""
    remote.confirm(f"Delete {webhook_id} and its delivery history?", yes)
    remote.client.webhooks.delete(webhook_id)
    remote.out.done(f"deleted {webhook_id}", {"id": webhook_id, "deleted": True})


@webhooks.command("roll-secret")
@connected
def roll_secret(remote: Remote, webhook_id: WebhookId, yes: Yes = False) -> None:
    """Issue a new signing secret (printed this once); the old one keeps signing for 24
    hours, so receivers can switch."""
    remote.confirm(f"Roll the signing secret of {webhook_id}? The old one ends in 24 hours.", yes)
    _show_secret(remote, remote.client.webhooks.roll_secret(webhook_id))


@webhooks.command("test")
@connected
def test(remote: Remote, webhook_id: WebhookId) -> None:
    """Queue a webhook.test message to the endpoint (sent within seconds)."""
    delivery = remote.client.webhooks.test(webhook_id)
    remote.out.item(
        delivery,
        [("delivery", delivery.id), ("event", delivery.event_type), ("status", delivery.status)],
    )


@webhooks.command("deliveries")
@connected
def deliveries(
    remote: Remote,
    webhook_id: WebhookId,
    limit: Annotated[
        int, typer.Option("--limit", metavar="N", min=1, help="At most N messages.")
    ] = 20,
) -> None:
    """The newest messages to a webhook and how their attempts went."""
    found = []
    for delivery in remote.client.webhooks.deliveries(webhook_id, limit=min(limit, 100)):
        found.append(delivery)
        if len(found) >= limit:
            break
    remote.out.table(
        found,
        ["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST STATUS", "CREATED"],
        lambda d: [
            d.id,
            d.event_type,
            d.status,
            d.attempt_count,
            (d.attempts[-1].status_code or d.attempts[-1].error) if d.attempts else None,
            d.created_at,
        ],
        empty="no deliveries",
    )


def _show_secret(remote: Remote, created: CreatedWebhook) -> None:
    out = remote.out
    if out.as_json:
        out.json(created)
    else:
        out.item(created, [*_fields(created), ("secret", created.secret)])
    out.notice(SHOWN_ONCE)


def _fields(webhook: Webhook) -> list[tuple[str, object]]:
    return [
        ("id", webhook.id),
        ("url", webhook.url),
        ("events", webhook.events),
        ("enabled", webhook.enabled),
        ("description", webhook.description),
        ("disabled reason", webhook.disabled_reason),
        ("failing since", webhook.failing_since),
        ("previous secret until", webhook.previous_secret_valid_until),
        ("created", webhook.created_at),
    ]
