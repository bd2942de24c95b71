"""``keyplane serve | migrate | orgs create``."""

from __future__ import annotations

import json
import os
import secrets
import sys
from typing import Annotated

import typer

from keyplane.app import build, create_app
from keyplane.cli.users import users
from keyplane.container import Keyplane
from keyplane.domain.errors import KeyplaneError
from keyplane.logs import setup_logging
from keyplane.services.users import check_password
from keyplane.settings import ConfigurationError, Settings

app = typer.Typer(
    help="keyplane: a control plane for API keys.", no_args_is_help=True, add_completion=False
)
orgs = typer.Typer(help="Organizations.", no_args_is_help=True)
app.add_typer(orgs, name="orgs")
app.add_typer(users, name="users")

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="KEYPLANE_DATABASE_URL",
        help="SQLAlchemy URL; default: a SQLite file keyplane.db here.",
    ),
]
DEMO_ORG = "Demo"
DEMO_EMAIL = "demo@example.com"


def _settings(database_url: str | None) -> Settings:
    settings = Settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def _build(database_url: str | None) -> Keyplane:
    try:
        return build(_settings(database_url))
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


def _one_time_password() -> str:
    return secrets.token_urlsafe(15)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    database_url: DatabaseUrl = None,
    demo: Annotated[
        bool,
        typer.Option(help="Ensure a demo organization; print a console password and a key for it."),
    ] = False,
) -> None:
    """Run migrations if needed and serve the API and the console."""
    import uvicorn  # imported here: the other commands do not need a server

    settings = _settings(database_url)
    setup_logging(settings.log_level)
    kp = _build(database_url)
    base = f"http://{host}:{port}"
    typer.echo(f"keyplane is serving at {base}  (API docs: {base}/docs)")
    if demo:
        issued = kp.orgs.demo(DEMO_ORG, DEMO_EMAIL)
        password = _one_time_password()
        kp.users.set_password(issued.owner.id, password)
        typer.echo(f"console: {base}/console  sign in as {issued.owner.email} / {password}")
        typer.echo(f"demo organization {issued.org.id}; a new full-access API key (shown once):")
        typer.echo(f"  {issued.api_key}")
        typer.echo(f"try:  curl -H 'Authorization: Bearer {issued.api_key}' {base}/v1/keys")
    uvicorn.run(
        create_app(keyplane=kp),
        host=host,
        port=port,
        access_log=False,
        log_config=None,
        server_header=False,
    )


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Upgrade the database schema to the newest version."""
    kp = _build(database_url)
    kp.close()
    typer.echo("database schema is up to date")


@orgs.command("create")
def create_org(
    name: Annotated[str, typer.Argument(help="The organization's name.")],
    owner_email: Annotated[str, typer.Option("--owner-email", help="Email of the owner user.")],
    database_url: DatabaseUrl = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    owner_password_stdin: Annotated[
        bool,
        typer.Option(
            "--owner-password-stdin", help="Read the owner's console password from stdin."
        ),
    ] = False,
) -> None:
    """Create an organization, its owner and a full-access key (shown only now).

    The owner gets a one-time console password, printed here, unless one is given on stdin.
    """
    kp = _build(database_url)
    try:
        given = sys.stdin.readline().rstrip("\n") if owner_password_stdin else None
        password = check_password(given) if given is not None else _one_time_password()
        created = kp.orgs.create(name, owner_email)
        # A person who already signs in (to another organization) keeps their password.
        kept = created.owner.password_hash is not None
        if not kept:
            kp.users.set_password(created.owner.id, password)
    except KeyplaneError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        kp.close()
    shown = None if owner_password_stdin or kept else password
    if as_json:
        body = {"org_id": created.org.id, "user_id": created.owner.id, "api_key": created.api_key}
        if shown:
            body["owner_password"] = shown
        typer.echo(json.dumps(body))
        return
    typer.echo(f"organization  {created.org.id}  {created.org.name}")
    typer.echo(f"owner         {created.owner.id}  {created.owner.email}")
    typer.echo(f"api key       {created.api_key}")
    if shown:
        typer.echo(f"password      {shown}  (one-time: sign in to the console and change it)")
    if kept:
        typer.echo("password      unchanged: the owner already signs in with their own")
    typer.echo("Store the API key now: it has full access and cannot be shown again.")


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
