"""``keyplane worker``: the background jobs without the web server."""

from __future__ import annotations

import signal
import threading
from types import FrameType
from typing import Annotated

import typer

from keyplane.cli.common import DatabaseUrl, build_services, settings_for
from keyplane.logs import setup_logging


def worker(
    database_url: DatabaseUrl = None,
    once: Annotated[
        bool, typer.Option("--once", help="Run every job once, print what each did, and exit.")
    ] = False,
) -> None:
    """Run the background jobs (expiry purge and warnings, webhook delivery, retention)
    until stopped (SIGINT or SIGTERM).

    For deployments that keep them apart from `serve` (set KEYPLANE_RUN_JOBS=false on the
    web nodes); several workers and servers on one database are safe together.
    """
    settings = settings_for(database_url)
    setup_logging(settings.log_level)
    kp = build_services(database_url, settings)
    try:
        if once:
            for name, handled in kp.jobs.run_once().items():
                typer.echo(f"{name}: {handled}")
            return
        stopped = threading.Event()

        def stop(signum: int, _frame: FrameType | None) -> None:
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        names = ", ".join(job.name for job in kp.jobs.jobs)
        typer.echo(f"keyplane worker: running {names} every {settings.jobs_interval_seconds:g} s")
        kp.jobs.start()
        stopped.wait()
        typer.echo("keyplane worker: stopping")
    finally:
        kp.close()
