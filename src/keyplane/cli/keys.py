"""``keyplane keys``: issue, list, read, change, disable, rotate and delete keys on a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from keyplane.cli.parsing import (
    Metadata,
    expiry,
    metadata_of,
    scopes_of,
    seconds_of,
)
from keyplane.cli.remote import Remote, Yes, connected

if TYPE_CHECKING:
    from keyplane_client import CreatedKey, Key

keys = typer.Typer(help="API keys, on a keyplane server.", no_args_is_help=True)

KeyId = Annotated[str, typer.Argument(metavar="KEY_ID", help="The key's id (key_…).")]
Description = Annotated[
    str | None, typer.Option("--description", metavar="TEXT", help="What the key is for.")
]
ExpiresIn = Annotated[
    str | None,
    typer.Option(
        "--expires-in",
        metavar="DURATION",
        help="Expire after this long: 30d, 2w, 12h, 45m.",
    ),
]
ExpiresAt = Annotated[
    str | None,
    typer.Option(
        "--expires-at",
        metavar="TIME",
        help="Expire at this time (RFC 3339 with a zone, e.g. 2027-01-31T00:00:00Z).",
    ),
]
ProfileId = Annotated[
    str | None,
    typer.Option(
        "--profile-id",
        metavar="PROFILE_ID",
        help="The key's profile (prf_…), the settings your service reads on verification.",
    ),
]
# Keys asked for per request while listing (the server allows up to 200).
PAGE_SIZE = 100
SHOWN_ONCE = (
    "This is the only time the full key is shown: keyplane stores only a hash of it. "
    "Store it now (in a secret manager, never in source code)."
)


@keys.command("create")
@connected
def create(
    remote: Remote,
    name: Annotated[str, typer.Argument(metavar="NAME", help="A name people recognise.")],
    scopes: Annotated[
        list[str] | None,
        typer.Option(
            "--scopes",
            metavar="SCOPES",
            help="What the key may do, comma-separated (models:read,tools:*); repeatable. "
            "None gives full access, or the app's scopes in an app.",
        ),
    ] = None,
    preset: Annotated[
        str | None,
        typer.Option(
            "--preset", metavar="NAME", help="Take the scopes from this permission preset."
        ),
    ] = None,
    app: Annotated[
        str | None, typer.Option("--app", metavar="APP_ID", help="Put the key in this app.")
    ] = None,
    expires_in: ExpiresIn = None,
    expires_at: ExpiresAt = None,
    metadata: Metadata = None,
    description: Description = None,
    profile_id: ProfileId = None,
    environment: Annotated[
        str,
        typer.Option(
            "--environment", metavar="ENV", help="live or test: the key's prefix (kp_live_…)."
        ),
    ] = "live",
) -> None:
    """Create a key. The full key is printed this once."""
    if scopes and preset:
        raise typer.BadParameter("give --scopes or --preset, not both", param_hint="--preset")
    if environment not in ("live", "test"):
        raise typer.BadParameter("live or test", param_hint="--environment")
    fields: dict[str, Any] = {"environment": environment, **expiry(expires_in, expires_at)}
    if scopes:
        fields["scopes"] = scopes_of(scopes)
    if preset:
        fields["preset"] = preset
    if app:
        fields["app_id"] = app
    if metadata:
        fields["metadata"] = metadata_of(metadata)
    if description is not None:
        fields["description"] = description
    if profile_id:
        fields["profile_id"] = profile_id
    created = remote.client.keys.create(name=name, **fields)
    show_created(remote, created)


def show_created(remote: Remote, created: CreatedKey) -> None:
    """A new key (created or rotated): the record, the full key, and the notice that it
    is shown only now. Nothing else in the CLI ever holds the full key."""
    out = remote.out
    if out.as_json:
        out.json(created)
    else:
        out.item(created, [*_fields(created), ("key", created.key)])
    out.notice(SHOWN_ONCE)
    if created.full_access:
        out.notice(
            "warning: this key has FULL ACCESS (no scopes were given): it may do everything."
        )


@keys.command("list")
@connected
def list_keys(
    remote: Remote,
    app: Annotated[
        str | None, typer.Option("--app", metavar="APP_ID", help="Only this app's keys.")
    ] = None,
    status: Annotated[
        str | None,
        typer.Option("--status", metavar="STATUS", help="Only active, inactive or expired keys."),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option("--limit", metavar="N", min=1, help="At most N keys (default: every key)."),
    ] = None,
) -> None:
    """List keys, newest first: every page, or the first N keys with --limit."""
    if status not in (None, "active", "inactive", "expired"):
        raise typer.BadParameter("active, inactive or expired", param_hint="--status")
    state: Literal["active", "inactive", "expired"] | None = status  # type: ignore[assignment]
    found: list[Key] = []
    page_size = min(limit, PAGE_SIZE) if limit else PAGE_SIZE
    for key in remote.client.keys.list(app_id=app, status=state, limit=page_size):
        found.append(key)
        if limit is not None and len(found) >= limit:
            break
    remote.out.table(
        found,
        ["ID", "NAME", "KEY", "STATUS", "SCOPES", "APP", "EXPIRES", "LAST USED"],
        lambda k: [
            k.id,
            k.name,
            k.masked_key,
            k.status,
            "FULL ACCESS" if k.full_access else k.effective_scopes,
            k.app_id,
            k.expires_at,
            k.last_used_at,
        ],
        empty="no keys",
    )


@keys.command("show")
@connected
def show(remote: Remote, key_id: KeyId) -> None:
    """Show a key (never the full key: it was shown once, at creation)."""
    key = remote.client.keys.get(key_id)
    remote.out.item(key, _fields(key))


@keys.command("update")
@connected
def update(
    remote: Remote,
    key_id: KeyId,
    description: Description = None,
    metadata: Metadata = None,
    expires_in: ExpiresIn = None,
    expires_at: ExpiresAt = None,
    no_expiry: Annotated[
        bool, typer.Option("--no-expiry", help="Remove the expiry (if the org allows it).")
    ] = False,
    profile_id: ProfileId = None,
) -> None:
    """Change a key's description, metadata (replaced as a whole), expiry or profile.

    Name, scopes, app and the key itself never change: create a new key instead.
    """
    fields: dict[str, Any] = {}
    if description is not None:
        fields["description"] = description
    if metadata:
        fields["metadata"] = metadata_of(metadata)
    if no_expiry:
        if expires_in or expires_at:
            raise typer.BadParameter("--no-expiry with another expiry", param_hint="--no-expiry")
        fields["expires_at"] = None
    else:
        fields.update(expiry(expires_in, expires_at, days=False))
    if profile_id:
        fields["profile_id"] = profile_id
    if not fields:
        raise typer.BadParameter("nothing to change: give at least one option")
    key = remote.client.keys.update(key_id, **fields)
    remote.out.item(key, _fields(key))


@keys.command("disable")
@connected
def disable(remote: Remote, key_id: KeyId, yes: Yes = False) -> None:
    """Disable a key: it stops verifying (DISABLED) at once, until enabled again."""
    remote.confirm(f"Disable {key_id}? Every service using it stops working.", yes)
    key = remote.client.keys.disable(key_id)
    remote.out.item(key, _fields(key))


@keys.command("enable")
@connected
def enable(remote: Remote, key_id: KeyId) -> None:
    """Enable a disabled key again."""
    key = remote.client.keys.enable(key_id)
    remote.out.item(key, _fields(key))


@keys.command("rotate")
@connected
def rotate(
    remote: Remote,
    key_id: KeyId,
    grace: Annotated[
        str | None,
        typer.Option(
            "--grace",
            metavar="DURATION",
            help="How long the old key keeps verifying: 0, 30m, 24h, 7d (server default: "
            "24h; at most 30d).",
        ),
    ] = None,
    yes: Yes = False,
) -> None:
    """Issue a key's successor (printed this once); the old key verifies until the grace
    period ends."""
    fields: dict[str, Any] = {}
    when = "at the end of the grace period"
    if grace is not None:
        fields["grace_period_seconds"] = seconds_of(grace, "--grace")
        if fields["grace_period_seconds"] == 0:
            when = "now"
    remote.confirm(f"Rotate {key_id}? The old key stops verifying {when}.", yes)
    created = remote.client.keys.rotate(key_id, **fields)
    show_created(remote, created)


@keys.command("delete")
@connected
def delete(remote: Remote, key_id: KeyId, yes: Yes = False) -> None:
    """Delete a key for good: every service using it stops working at once."""
    remote.confirm(f"Delete {key_id} for good? Every service using it stops working.", yes)
    remote.client.keys.delete(key_id)
    remote.out.done(f"deleted {key_id}", {"id": key_id, "deleted": True})


def _fields(key: Key) -> list[tuple[str, object]]:
    scopes: object = "FULL ACCESS" if key.full_access else key.effective_scopes
    rows: list[tuple[str, object]] = [
        ("id", key.id),
        ("name", key.name),
        ("description", key.description),
        ("masked key", key.masked_key),
        ("status", key.status),
        ("environment", key.environment),
        ("scopes", scopes),
        ("own scopes", key.scopes),
        ("app", key.app_id),
        ("profile", key.profile_id),
        ("metadata", key.metadata),
        ("created", key.created_at),
        ("expires", key.expires_at),
        ("last used", key.last_used_at),
    ]
    if key.rotated_from:
        rows.append(("rotated from", key.rotated_from))
    if key.rotated_to:
        rows.append(("rotated to", key.rotated_to))
    return rows
