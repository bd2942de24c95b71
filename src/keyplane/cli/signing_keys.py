"""``keyplane signing-keys rotate | list``: the keys that sign OAuth access tokens."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from keyplane.cli.common import DatabaseUrl, build_services
from keyplane.domain.errors import Conflict, StorageUnavailable

signing_keys = typer.Typer(help="The keys that sign OAuth access tokens.", no_args_is_help=True)

AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@signing_keys.command("rotate")
def rotate(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Make a new current signing key. The current one becomes previous: it stays in the
    JWKS and keeps verifying the tokens it signed (at least an hour); previous keys that
    stopped signing over an hour ago are retired. Every node on PostgreSQL picks the new
    key up within a second; a SQLite server within its cache TTL (KEYPLANE_CACHE_TTL_SECONDS)."""
    kp = build_services(database_url)
    try:
        rotation = kp.signing.rotate()
    except (Conflict, StorageUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        kp.close()
    if as_json:
        body = {
            "current": rotation.current.kid,
            "previous": rotation.previous,
            "retired": rotation.retired,
        }
        typer.echo(json.dumps(body))
        return
    typer.echo(f"current   {rotation.current.kid}  {rotation.current.algorithm}")
    if rotation.previous:
        typer.echo(f"previous  {rotation.previous}  (verifies the tokens it signed)")
    for kid in rotation.retired:
        typer.echo(f"retired   {kid}")


@signing_keys.command("list")
def list_keys(database_url: DatabaseUrl = None, as_json: AsJson = False) -> None:
    """Every signing key: kid, algorithm, state (current, previous, retired), when made
    and when it stopped signing. Public information only."""
    kp = build_services(database_url)
    try:
        keys = kp.signing.list()
    except StorageUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        kp.close()
    if as_json:
        rows = [
            {
                "kid": key.kid,
                "algorithm": key.algorithm,
                "state": key.state,
                "created_at": key.created_at.isoformat(),
                "rotated_at": key.rotated_at.isoformat() if key.rotated_at else None,
            }
            for key in keys
        ]
        typer.echo(json.dumps(rows))
        return
    for key in keys:
        rotated = key.rotated_at.isoformat(timespec="seconds") if key.rotated_at else "-"
        created = key.created_at.isoformat(timespec="seconds")
        typer.echo(f"{key.kid}  {key.algorithm}  {key.state:<8}  {created}  {rotated}")
