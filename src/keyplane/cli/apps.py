"""``keyplane apps``: groups of keys sharing one scope set, on a server."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from keyplane.cli.parsing import scopes_of
from keyplane.cli.remote import Remote, Yes, connected

if TYPE_CHECKING:
    from keyplane_client import App

apps = typer.Typer(help="Apps: groups of keys sharing one scope set.", no_args_is_help=True)

AppId = Annotated[str, typer.Argument(metavar="APP_ID", help="The app's id (app_…).")]
Scopes = Annotated[
    list[str] | None,
    typer.Option(
        "--scopes",
        metavar="SCOPES",
        help="The app's scopes, comma-separated; repeatable. They govern every key of the app.",
    ),
]
Description = Annotated[str | None, typer.Option("--description", metavar="TEXT")]


@apps.command("create")
@connected
def create(
    remote: Remote,
    name: Annotated[str, typer.Argument(metavar="NAME", help="The app's name.")],
    scopes: Scopes = None,
    description: Description = None,
) -> None:
    """Create an app (without --scopes: full access for its keys)."""
    fields: dict[str, Any] = {}
    if scopes:
        fields["scopes"] = scopes_of(scopes)
    if description is not None:
        fields["description"] = description
    app = remote.client.apps.create(name=name, **fields)
    remote.out.item(app, _fields(app))


@apps.command("list")
@connected
def list_apps(remote: Remote) -> None:
    """List every app."""
    found = list(remote.client.apps.list(limit=100))
    remote.out.table(
        found,
        ["ID", "NAME", "SCOPES", "KEYS", "CREATED"],
        lambda a: [a.id, a.name, _scopes(a), a.key_count, a.created_at],
        empty="no apps",
    )


@apps.command("show")
@connected
def show(remote: Remote, app_id: AppId) -> None:
    """Show an app."""
    app = remote.client.apps.get(app_id)
    remote.out.item(app, _fields(app))


@apps.command("update")
@connected
def update(
    remote: Remote,
    app_id: AppId,
    name: Annotated[str | None, typer.Option("--name", metavar="NAME")] = None,
    scopes: Scopes = None,
    description: Description = None,
) -> None:
    """Rename an app or change its scopes (every key of the app follows at once)."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if scopes:
        fields["scopes"] = scopes_of(scopes)
    if description is not None:
        fields["description"] = description
    if not fields:
        raise typer.BadParameter("nothing to change: give at least one option")
    app = remote.client.apps.update(app_id, **fields)
    remote.out.item(app, _fields(app))


@apps.command("delete")
@connected
def delete(remote: Remote, app_id: AppId, yes: Yes = False) -> None:
    """Delete an app and every key in it."""
    remote.confirm(f"Delete {app_id} and every key in it, for good?", yes)
    remote.client.apps.delete(app_id)
    remote.out.done(f"deleted {app_id} and its keys", {"id": app_id, "deleted": True})


def _scopes(app: App) -> object:
    return "FULL ACCESS" if app.full_access else app.scopes


def _fields(app: App) -> list[tuple[str, object]]:
    return [
        ("id", app.id),
        ("name", app.name),
        ("description", app.description),
        ("scopes", _scopes(app)),
        ("keys", app.key_count),
        ("created", app.created_at),
        ("updated", app.updated_at),
    ]
