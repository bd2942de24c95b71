"""``keyplane``: the server's commands (serve, migrate, worker, orgs, users, audit verify,
scan) and the API client's (login, keys, apps, webhooks, audit export, usage).

Every import of the server (the app, its settings, SQLAlchemy, FastAPI) happens inside the
command that runs it: at the top of this module it cost every command about 1.5 s before
it did anything, ``keyplane keys list`` against a remote server included.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperOption

from keyplane import __version__
from keyplane.cli.apps import apps
from keyplane.cli.audit import audit
from keyplane.cli.common import DatabaseUrl, build_services, fail, one_time_password, settings_for
from keyplane.cli.keys import keys
from keyplane.cli.login import login, logout
from keyplane.cli.remote import EXIT_CODES_HELP
from keyplane.cli.scan import scan
from keyplane.cli.signing_keys import signing_keys
from keyplane.cli.usage import usage
from keyplane.cli.users import users
from keyplane.cli.webhooks import webhooks
from keyplane.cli.worker import worker
from keyplane.logs import setup_logging

if TYPE_CHECKING:
    import uvicorn

    from keyplane.container import Keyplane
    from keyplane.settings import Settings


def _argument_label(self: TyperArgument, ctx: object) -> None:
    return None  # the argument's name (its metavar) is already in the line


def _option_label(self: TyperOption, ctx: object) -> str:
    return self.metavar or (self.name or "value").upper()


# Typer labels every parameter with its Python type (`NAME <str>`, `--port <int>`);
# keyplane's help names values by metavar (NAME, EMAIL, PORT; the option's name in capitals
# when none is given), as click does, and shows no Python types. Every command group,
# including those added later, gets it from here.
TyperArgument.display_type_rich = _argument_label  # type: ignore[method-assign,assignment]
TyperOption.display_type_rich = _option_label  # type: ignore[method-assign]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"keyplane {__version__}")
        raise typer.Exit


app = typer.Typer(
    help="keyplane: a control plane for API keys.",
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    # Plain help, as click writes it: rich's panels label flags and --help with `<bool>`.
    rich_markup_mode=None,
)
orgs = typer.Typer(help="Organizations (on the database).", no_args_is_help=True)
app.add_typer(orgs, name="orgs")
app.add_typer(users, name="users")
app.add_typer(audit, name="audit")
app.add_typer(signing_keys, name="signing-keys")
app.command()(worker)
app.command()(scan)


@app.callback()
def _main(
    _version_flag: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """keyplane: a control plane for API keys."""


SWITCH_INTERVAL = 0.0005
DEMO_ORG = "Demo"
DEMO_EMAIL = "demo@example.com"


def listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else happens: a busy port must fail
    before the database is touched (and before the demo's password and key change)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise fail(f"cannot listen on {host}:{port}: {exc.strerror}", 1) from exc
    sock.set_inheritable(True)
    return sock


def server_config(asgi: Any, settings: Settings, workers: int = 1) -> uvicorn.Config:
    """uvicorn as keyplane runs it (``asgi``: the app, or a factory's import path)."""
    import uvicorn  # imported here: the other commands do not need a server

    return uvicorn.Config(
        asgi,
        factory=isinstance(asgi, str),
        workers=workers,
        access_log=False,
        log_config=None,
        server_header=False,
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default; keyplane reads it
        # only from KEYPLANE_TRUSTED_PROXIES (keyplane.api.middleware.TrustedProxies).
        proxy_headers=False,
        log_level=settings.log_level.lower(),
    )


@app.command()
def serve(
    host: Annotated[str, typer.Option(metavar="HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="PORT", help="Port to listen on.")] = 8000,
    database_url: DatabaseUrl = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Ensure a demo organization; print a console password and a key for it."
        ),
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            metavar="N",
            help=(
                "Server processes sharing the port (more than one needs PostgreSQL, and "
                "KEYPLANE_REDIS_URL while any rate limit or quota exists)."
            ),
        ),
    ] = 1,
) -> None:
    """Run migrations if needed and serve the API and the console."""
    import uvicorn

    from keyplane.app import create_app
    from keyplane.domain.errors import StorageUnavailable
    from keyplane.storage.engine import is_sqlite

    settings = settings_for(database_url)
    problems = settings.production_problems(demo=demo)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise fail(f"KEYPLANE_ENV=production refuses to start:\n{lines}")
    if workers > 1 and is_sqlite(settings.database_url):
        # Refused rather than made to work: SQLite has no NOTIFY, so each process would need
        # a poll of a change table (a table, a write per change, a query per process every
        # ~100 ms) to hear of the others' changes, for a setup whose writers all wait on one
        # file lock anyway. Several processes is what PostgreSQL is for; without a channel a
        # key disabled through one worker would keep verifying in the others.
        raise fail(
            f"--workers {workers} needs PostgreSQL: on SQLite each process would keep its "
            "own key cache and never hear of the other processes' changes (SQLite has no "
            "LISTEN/NOTIFY), so a key disabled or deleted through one worker would still "
            "verify in the others. Run one process on SQLite, or set "
            "KEYPLANE_DATABASE_URL=postgresql://… to run several."
        )
    setup_logging(settings.log_level)
    sock = listen(host, port)
    kp = build_services(database_url, settings)
    # Before the first request, and for the parent of --workers before it forks: it holds
    # its share for as long as it supervises, so that no limit can be added in between.
    _join_limits_guard(kp, workers)
    shown = f"[{host}]" if ":" in host else host
    base = f"http://{shown}:{port}"
    docs = f"  (API docs: {base}/docs)" if settings.docs_enabled else ""
    typer.echo(f"keyplane is serving at {base}{docs}")
    if demo:
        try:
            _print_demo(kp, base)
        except StorageUnavailable as exc:
            kp.close()
            raise fail(str(exc), 1) from exc
    # The event loop shares the GIL with the threadpool (console pages, cold loads). By
    # default a thread holding it keeps it for up to 5 ms before the loop gets a turn, which
    # is a verification's whole budget; 0.5 ms keeps the loop's waits short
    # (bench/signin.py measures verification while the console is busy).
    if workers > 1:
        # Each worker process builds its own services (worker_app); this one only bound the
        # socket, migrated, printed and joined the limits guard, and supervises them
        # (uvicorn restarts a dead one). Closed after them: the guard's share goes last.
        os.environ["KEYPLANE_DATABASE_URL"] = settings.database_url
        from uvicorn.supervisors import Multiprocess

        config = server_config("keyplane.cli.main:worker_app", settings, workers)
        with _metrics_directory(settings.metrics):
            try:
                Multiprocess(config, sockets=[sock]).run()
            finally:
                kp.close()
        return
    sys.setswitchinterval(SWITCH_INTERVAL)
    server = uvicorn.Server(server_config(create_app(keyplane=kp), settings))
    server.run(sockets=[sock])


@contextmanager
def _metrics_directory(enabled: bool) -> Iterator[None]:
    """With KEYPLANE_METRICS=true, the directory where every worker keeps its metric values
    and any one of them sums them for GET /metrics (keyplane/metrics.py).

    A new private directory for each run, removed at exit: prometheus-client requires an
    empty one at start (values left by an earlier run would be counted again), and 0700
    keeps other users of the machine from reading or faking the counts. Set in the
    environment here, before the workers are spawned: they import prometheus-client after
    it. A worker that exits (uvicorn replaces a dead one) leaves its files, and that is
    right for counters and histograms, the only kinds keyplane has: what it counted
    happened. ``multiprocess.mark_process_dead`` only removes live-gauge files, so it is
    not called; a ``livesum``/``liveall`` gauge would need it in the supervisor.
    """
    if not enabled:
        yield
        return
    directory = tempfile.mkdtemp(prefix="keyplane-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _join_limits_guard(kp: Keyplane, workers: int) -> None:
    """Refuse to serve when rate limits and quotas could not be exact (ports.LimitsGuard):
    without KEYPLANE_REDIS_URL each process counts them in its own memory."""
    from keyplane.domain.errors import LimitsNeedRedis

    try:
        kp.guard.join(processes=workers)
    except LimitsNeedRedis as exc:
        kp.close()
        others = exc.processes - workers
        if others > 0:
            who = (
                f"{others} other keyplane serve process{'es' if others > 1 else ''} already "
                "serve this database, each counting them in its own memory"
            )
        else:
            who = f"--workers {workers} would count them in {workers} separate memories"
        raise fail(
            "rate limits or quotas exist on this database (on keys, apps or organizations' "
            f"defaults) and {who}: a key limited to 100 a minute would get up to "
            f"{100 * exc.processes}. Set KEYPLANE_REDIS_URL=redis://… on every node (Redis "
            "then holds the counts, exact across processes and nodes), or serve this "
            "database from a single process (--workers 1, one node)."
        ) from exc


def worker_app() -> Any:
    """The app of one `serve --workers N` process: settings from the environment the
    parent set (its --database-url included), the schema already migrated by the parent.
    Each process has its own key cache and its own invalidation listener, so it hears of
    every change, the other workers' too, as a separate node would."""
    from keyplane.app import build, create_app
    from keyplane.settings import Settings

    settings = Settings()
    setup_logging(settings.log_level)
    sys.setswitchinterval(SWITCH_INTERVAL)
    return create_app(keyplane=build(settings, run_migrations=False))


def _print_demo(kp: Keyplane, base: str) -> None:
    from keyplane.domain.scopes import ScopeSet
    from keyplane.services.common import Principal
    from keyplane.services.orgs import furnish_demo

    issued = kp.orgs.demo(DEMO_ORG, DEMO_EMAIL)
    owner = Principal(issued.org.id, issued.owner.id, ScopeSet.full())
    furnish_demo(owner, kp.resources, kp.apps, kp.profiles, kp.presets)
    password = one_time_password()
    kp.users.set_password(issued.owner.id, password)
    typer.echo(f"console: {base}/console  sign in as {issued.owner.email} / {password}")
    typer.echo(
        f"demo organization {issued.org.id}: a new full-access API key, shown once, "
        "expiring in 24 hours. Set it in your shell:"
    )
    typer.echo(f"  export KP={issued.api_key}")
    typer.echo(f'try:  curl -H "Authorization: Bearer $KP" {base}/v1/keys')


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Upgrade the database schema to the newest version."""
    kp = build_services(database_url)
    kp.close()
    typer.echo("database schema is up to date")


@orgs.command("create")
def create_org(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The organization's name.")],
    owner_email: Annotated[
        str, typer.Option("--owner-email", metavar="EMAIL", help="Email of the owner user.")
    ],
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
    from keyplane.domain.errors import KeyplaneError, StorageUnavailable
    from keyplane.services.users import check_password

    kp = build_services(database_url)
    try:
        given = sys.stdin.readline().rstrip("\n") if owner_password_stdin else None
        password = check_password(given) if given is not None else one_time_password()
        created = kp.orgs.create(name, owner_email)
        # A person who already signs in (to another organization) keeps their password.
        kept = created.owner.password_hash is not None
        if not kept:
            kp.users.set_password(created.owner.id, password)
    except (KeyplaneError, StorageUnavailable) as exc:
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


# The API client's commands, listed after the server's: they call a keyplane server with an
# API key (keyplane.cli.remote) and never touch a database.
app.command()(login)
app.command()(logout)
app.add_typer(keys, name="keys")
app.add_typer(apps, name="apps")
app.add_typer(webhooks, name="webhooks")
app.command()(usage)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
