"""``keyplane audit verify``: check every organization's audit hash chain."""

from __future__ import annotations

from typing import Annotated

import typer

from keyplane.cli.common import DatabaseUrl, build_services
from keyplane.domain.errors import StorageUnavailable

audit = typer.Typer(help="The audit log.", no_args_is_help=True)


@audit.command("verify")
def verify(
    org: Annotated[
        str | None,
        typer.Option("--org", metavar="ID", help="Check only this organization (an org_… id)."),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Recompute every audit event's hash and follow each organization's chain. Exits 1 and
    names the first altered, inserted or removed event of each broken chain."""

    kp = build_services(database_url)
    try:
        breaks = kp.audit.verify(org)
    except StorageUnavailable as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        kp.close()
    for found in breaks:
        typer.echo(f"broken: {found}", err=True)
    if breaks:
        raise typer.Exit(1)
    scope = f"organization {org}" if org else "every organization"
    typer.echo(f"audit log intact: the hash chain of {scope} holds")
