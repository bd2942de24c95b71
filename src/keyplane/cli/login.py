"""``keyplane login`` and ``keyplane logout``: save or forget a profile (a server and the
API key to use there) in the config file (see keyplane.cli.profiles)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from keyplane.cli import profiles
from keyplane.cli.output import Output
from keyplane.cli.remote import (
    USAGE,
    AsJson,
    ProfileName,
    Url,
    connect,
    errors_reported,
    fail,
)


def login(
    url: Url = None,
    profile: ProfileName = None,
    api_key_stdin: Annotated[
        bool,
        typer.Option(
            "--api-key-stdin",
            help="Read the API key from stdin (one line) instead of asking for it.",
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Save a server and an API key as a profile, after checking the key against the server.

    The key is asked for without echo (or read from stdin with --api-key-stdin), never
    taken from the command line. The profile is written to $KEYPLANE_CONFIG, else
    $XDG_CONFIG_HOME/keyplane/config.toml (~/.config/keyplane/config.toml), readable by you
    only (0600).
    """
    out = Output(as_json=as_json)
    name = _profile_name(profile)
    interactive = sys.stdin.isatty()
    if not url:
        if not interactive:
            fail("no server: pass --url or set KEYPLANE_URL", USAGE)
        url = typer.prompt("keyplane server URL", err=True).strip()
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        fail(f"{url!r} is not an http:// or https:// URL", USAGE)
    if api_key_stdin:
        api_key = sys.stdin.readline().strip()
    elif interactive:
        api_key = typer.prompt("API key", hide_input=True, err=True).strip()
    else:
        fail("stdin is not a terminal: pass the key on stdin with --api-key-stdin", USAGE)
    if not api_key:
        fail("no API key given", USAGE)
    organization = _check(url, api_key, out)
    path = profiles.config_path()
    try:
        profiles.save(path, profiles.Profile(name, url, api_key))
    except profiles.ConfigError as exc:
        fail(str(exc), USAGE)
    except OSError as exc:
        fail(f"cannot write {path}: {exc.strerror}", USAGE)
    if as_json:
        out.json({"profile": name, "url": url, "organization": organization, "config": str(path)})
        return
    where = f"organization {organization['name']} ({organization['id']})" if organization else url
    typer.echo(f"logged in to {where} as profile {name!r}; saved in {path} (readable by you only)")


def _check(url: str, api_key: str, out: Output) -> dict[str, str] | None:
    """The key's organization, asking the server; a key it refuses is never saved.

    A key without ``org:read`` is still a working key (403, not 401): it is saved, and
    the organization is then unknown."""
    from keyplane_client import PermissionDeniedError

    with connect(url, api_key) as client, errors_reported(out):
        try:
            org = client.org.get()
        except PermissionDeniedError:
            out.notice("the key works, but may not read its organization (no org:read)")
            return None
        return {"id": org.id, "name": org.name}
    raise AssertionError("unreachable")  # errors_reported exits on every error


def logout(profile: ProfileName = None, as_json: AsJson = False) -> None:
    """Forget a saved profile (the key itself keeps working: to revoke it, use `keyplane
    keys disable` or `keyplane keys delete`)."""
    out = Output(as_json=as_json)
    name = _profile_name(profile)
    path = profiles.config_path()
    try:
        removed = profiles.remove(path, name)
    except profiles.ConfigError as exc:
        fail(str(exc), USAGE)
    if as_json:
        out.json({"profile": name, "removed": removed, "config": str(path)})
    elif removed:
        typer.echo(f"removed profile {name!r} from {path}")
    else:
        typer.echo(f"no profile {name!r} in {path}: nothing to do")


def _profile_name(profile: str | None) -> str:
    try:
        return profiles.check_name(profile or profiles.DEFAULT_PROFILE)
    except profiles.ConfigError as exc:
        fail(str(exc), USAGE)
