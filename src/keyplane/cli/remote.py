"""What every command that calls a keyplane server shares: where the server is and which
key to present (``--url``, ``--api-key``, ``--profile``, ``--json`` on every command),
the exit codes, and errors printed readably.

The commands call the server through the Python SDK (``keyplane_client``), imported only
when a command runs: the rest of the CLI does not need it.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, Any, Concatenate, Final, NoReturn, ParamSpec
from urllib.parse import urlsplit

import typer

from keyplane.cli import profiles
from keyplane.cli.output import Output

if TYPE_CHECKING:
    from keyplane_client import Keyplane as Client

OK: Final = 0
API_ERROR: Final = 1
USAGE: Final = 2
AUTH: Final = 3
NOT_FOUND: Final = 4
UNAVAILABLE: Final = 5
CANCELLED: Final = 6

# "\b" keeps click from re-flowing the lines of the paragraph that follows it.
EXIT_CODES_HELP: Final = """\b
Exit status of the API commands (login, keys, apps, webhooks, audit export, usage):
  0  success
  1  the server refused the request (conflict, invalid input, rate limited, ...)
  2  usage error: a bad option, no server or key configured, a confirmation
     needed while stdin is not a terminal (pass --yes), an unsafe config file
  3  authentication or permission: the key is unknown, disabled or expired
     (401), or lacks a scope (403)
  4  not found (404): nothing of that id in the key's organization
  5  the server could not be reached, timed out, or failed (5xx)
  6  cancelled at a confirmation prompt: nothing changed"""

CONNECTION_HELP: Final = (
    "Where the server is and which key to use, each from the first place that has it: "
    "the option (--url, --api-key), the environment (KEYPLANE_URL, KEYPLANE_API_KEY), then "
    "the profile `keyplane login` saved (--profile, KEYPLANE_PROFILE, or `default`)."
)

Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="KEYPLANE_URL",
        metavar="URL",
        help="The keyplane server, e.g. https://keyplane.example.com.",
        show_envvar=True,
    ),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar="KEYPLANE_API_KEY",
        metavar="KEY",
        help="The API key to act as. Prefer the environment or a profile: an option is "
        "visible to other users in the process list.",
        show_envvar=True,
    ),
]
ProfileName = Annotated[
    str | None,
    typer.Option(
        "--profile",
        envvar="KEYPLANE_PROFILE",
        metavar="NAME",
        help="The saved profile to use (default: `default`).",
        show_envvar=True,
    ),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable field names) instead of tables.")
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@dataclass(frozen=True)
class Connection:
    url: str
    api_key: str
    # Where the key came from, to say so when the server refuses it.
    key_source: str = field(default="--api-key")


def fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def resolve(url: str | None, api_key: str | None, profile: str | None) -> Connection:
    """Each value from the option or environment (typer has already preferred the option),
    else from the profile.

    A profile's key goes only to the profile's own server: with --url or KEYPLANE_URL
    naming another server, the profile's key is not used (it would be sent to a server the
    user never logged in to), and the key must come from --api-key or KEYPLANE_API_KEY.
    """
    if url and api_key:
        return Connection(url, api_key, _given("KEYPLANE_API_KEY", api_key))  # no file read
    name = profile or profiles.DEFAULT_PROFILE
    path = profiles.config_path()
    try:
        saved = profiles.load(path).get(profiles.check_name(name))
    except profiles.ConfigError as exc:
        fail(str(exc), USAGE)
    if saved is None and profile is not None:
        fail(f"no profile {name!r} in {path}: run `keyplane login --profile {name}`", USAGE)
    if not url:
        if saved is None:
            fail(
                "no keyplane server: pass --url, set KEYPLANE_URL, or run `keyplane login`",
                USAGE,
            )
        url = saved.url
    key_source = _given("KEYPLANE_API_KEY", api_key) if api_key else f"profile {name!r}"
    if not api_key:
        if saved is None or _origin(saved.url) != _origin(url):
            fail(
                f"no API key for {url}: pass --api-key, set KEYPLANE_API_KEY, or run "
                f"`keyplane login --url {url}`",
                USAGE,
            )
        api_key = saved.api_key
    return Connection(url, api_key, key_source)


def _given(variable: str, value: str) -> str:
    """Which of the option and the variable gave ``value`` (typer preferred the option)."""
    return variable if os.environ.get(variable) == value else "--api-key"


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url.rstrip("/"))
    return (parts.scheme.lower(), (parts.hostname or "").lower(), parts.port)


class Remote:
    """A running command's view of the server: the SDK client and the output."""

    def __init__(self, connection: Connection, out: Output) -> None:
        self.connection = connection
        self.out = out
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            self._client = connect(self.connection.url, self.connection.api_key)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def confirm(self, question: str, yes: bool) -> None:
        """Asks on the terminal; refuses to guess when nobody can answer."""
        if yes:
            return
        if not sys.stdin.isatty():
            fail(
                f"not confirmed: stdin is not a terminal, so nobody can answer {question!r} "
                "Pass --yes to go ahead without asking.",
                USAGE,
            )
        try:
            agreed = typer.confirm(question, default=False, err=True)
        except typer.Abort:  # Ctrl-C or end of input at the question: a "no"
            agreed = False
            typer.echo("", err=True)
        if not agreed:
            fail("cancelled: nothing changed", CANCELLED)


def sdk() -> ModuleType:
    """The SDK, imported now: only a command that calls a server pays for it."""
    try:
        import keyplane_client
    except ImportError:
        fail(
            "the API commands need the keyplane-client package: pip install "
            "./clients/python (from keyplane's source tree)",
            USAGE,
        )
    return keyplane_client


def connect(url: str, api_key: str) -> Client:
    client: Client = sdk().Keyplane(url, api_key)
    return client


@contextmanager
def errors_reported(out: Output, key_source: str | None = None) -> Iterator[None]:
    """The SDK's exceptions as one readable message and a documented exit code."""
    sdk()  # a missing SDK said plainly, before the import below
    from keyplane_client import APIConnectionError, APIError, KeyplaneError

    try:
        yield
    except APIError as exc:
        out.problem(exc.status, exc.title, exc.detail, exc.errors, exc.body)
        retry_after = exc.headers.get("retry-after")
        if retry_after and not out.as_json:
            out.notice(f"the server asks to retry after {retry_after} s")
        if exc.status == 401 and key_source and not out.as_json:
            out.notice(f"the key came from {key_source}")
        raise typer.Exit(exit_code(exc.status)) from None
    except APIConnectionError as exc:
        # The SDK's message names the address and the reason, never a header or the key.
        out.error(f"cannot reach the keyplane server: {exc}")
        raise typer.Exit(UNAVAILABLE) from None
    except KeyplaneError as exc:  # a success whose body is no keyplane answer: a wrong URL?
        out.error(f"the server's answer is not keyplane's API (check the URL): {exc}")
        raise typer.Exit(UNAVAILABLE) from None


def exit_code(status: int) -> int:
    if status in (401, 403):
        return AUTH
    if status == 404:
        return NOT_FOUND
    if status >= 500:
        return UNAVAILABLE
    return API_ERROR


P = ParamSpec("P")
# Python names of their own, so that a command's own `url` (a webhook's) cannot clash.
_COMMON = {
    "remote_url": Url,
    "remote_api_key": ApiKey,
    "remote_profile": ProfileName,
    "remote_json": AsJson,
}
_DEFAULTS: dict[str, Any] = {
    "remote_url": None,
    "remote_api_key": None,
    "remote_profile": None,
    "remote_json": False,
}


def connected(command: Callable[Concatenate[Remote, P], None]) -> Callable[P, None]:
    """A command that talks to a server: typer sees its own options followed by --url,
    --api-key, --profile and --json, and the function receives a ready :class:`Remote`
    instead of them. One place adds them, so no command can miss one or spell it
    differently."""
    signature = inspect.signature(command, eval_str=True)
    own = list(signature.parameters.values())[1:]
    common = [
        inspect.Parameter(
            name, inspect.Parameter.KEYWORD_ONLY, annotation=kind, default=_DEFAULTS[name]
        )
        for name, kind in _COMMON.items()
    ]

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        options: dict[str, Any] = {name: kwargs.pop(name) for name in _COMMON}
        out = Output(as_json=bool(options["remote_json"]))
        connection = resolve(
            options["remote_url"], options["remote_api_key"], options["remote_profile"]
        )
        remote = Remote(connection, out)
        try:
            with errors_reported(out, connection.key_source):
                command(remote, *args, **kwargs)
        finally:
            remote.close()

    parameters = [*own, *common]
    run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in parameters}
    run.__doc__ = f"{command.__doc__ or ''}\n\n{CONNECTION_HELP}"
    return run
