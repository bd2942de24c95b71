"""``keyplane users reset-password``: the operator's way back in for a lost password."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from keyplane.cli.common import DatabaseUrl, build_services, one_time_password

users = typer.Typer(help="People who sign in to the console.", no_args_is_help=True)


@users.command("reset-password")
def reset_password(
    email: Annotated[str, typer.Argument(help="The person's email address.")],
    org: Annotated[
        str | None,
        typer.Option(
            "--org",
            help="Also accept their membership of this organization (an org_… id); "
            "refused when they are not a member there.",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the new password from stdin.")
    ] = False,
) -> None:
    """Give a person a new password (printed once unless read from stdin) and end every
    console session they have. Recorded in the audit log of each of their organizations."""

    from keyplane.domain.errors import KeyplaneError, StorageUnavailable
    from keyplane.services.users import check_password

    kp = build_services(database_url)
    try:
        given = sys.stdin.readline().rstrip("\n") if password_stdin else None
        password = check_password(given) if given is not None else one_time_password()
        identity = kp.users.reset_password(email, password, org_id=org)
    except (KeyplaneError, StorageUnavailable) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        kp.close()
    typer.echo(f"new password for {identity.email}; their console sessions have ended")
    if not password_stdin:
        typer.echo(f"password      {password}  (one-time: shown only now)")
