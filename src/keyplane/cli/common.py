"""What every ``keyplane`` command shares: the database option, settings, building the
services with one-line errors, and one-time passwords.

The server's modules (the app, settings, SQLAlchemy) are imported inside the functions that
need them, never at the top of a CLI module: importing them takes about 1.5 s, which every
command would pay, ``keyplane keys list`` against a remote server included.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from keyplane.container import Keyplane
    from keyplane.settings import Settings

DatabaseUrl = Annotated[
    str | None,
    typer.Option(
        "--database-url",
        envvar="KEYPLANE_DATABASE_URL",
        metavar="URL",
        help="SQLAlchemy URL; default: a SQLite file keyplane.db here.",
    ),
]


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def settings_for(database_url: str | None) -> Settings:
    from pydantic import ValidationError

    from keyplane.settings import Settings

    try:
        settings = Settings()
    except ValidationError as exc:
        raise fail(
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        ) from exc
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def build_services(database_url: str | None, settings: Settings | None = None) -> Keyplane:
    from sqlalchemy.exc import DBAPIError

    from keyplane.app import build
    from keyplane.settings import ConfigurationError

    try:
        return build(settings or settings_for(database_url))
    except ConfigurationError as exc:
        raise fail(str(exc)) from exc
    except DBAPIError as exc:  # unreachable, refused, or no such database: say which, briefly
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
        raise fail(f"cannot use the database: {reason}", 1) from exc


def one_time_password() -> str:
    return secrets.token_urlsafe(15)
