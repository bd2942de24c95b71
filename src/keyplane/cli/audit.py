"""``keyplane audit verify``: check every organization's audit hash chain (on the
database); ``keyplane audit export``: download the audit log from a server."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from keyplane.cli.common import DatabaseUrl, build_services
from keyplane.cli.remote import Remote, connected
from keyplane.cli.usage import Since, Until, since_of

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
    from keyplane.domain.errors import StorageUnavailable

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


@audit.command("export")
@connected
def export(
    remote: Remote,
    since: Since = None,
    until: Until = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write to FILE (default: standard output)."
        ),
    ] = None,
    format: Annotated[
        str, typer.Option("--format", metavar="FORMAT", help="jsonl (one event a line) or csv.")
    ] = "jsonl",
    action: Annotated[
        str | None,
        typer.Option("--action", metavar="ACTION", help="key.create, or a prefix such as key."),
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", metavar="ID", help="Events by this user or key.")
    ] = None,
    target: Annotated[
        str | None, typer.Option("--target", metavar="ID", help="Events about this object.")
    ] = None,
) -> None:
    """Download the organization's audit events from a server, newest first, as JSON Lines
    or CSV (GET /v1/audit-events/export), streamed as they arrive.

    With --output, the file appears only once the export is complete, and --json prints
    {"output", "bytes"} when it is.
    """
    if format not in ("jsonl", "csv"):
        raise typer.BadParameter("jsonl or csv", param_hint="--format")
    kind: Literal["jsonl", "csv"] = format  # type: ignore[assignment]
    chunks = remote.client.audit_events.export(
        format=kind,
        start=since_of(since, "--since"),
        end=since_of(until, "--until"),
        action=action,
        actor_id=actor,
        target_id=target,
    )
    if output is None:
        sink = sys.stdout.buffer
        for chunk in chunks:
            sink.write(chunk)
        sink.flush()
        return
    # Into a file beside the target, renamed when complete: an interrupted export never
    # leaves a file that looks whole.
    partial = output.with_name(f".{output.name}.partial")
    written = 0
    try:
        with partial.open("wb") as sink:
            for chunk in chunks:
                sink.write(chunk)
                written += len(chunk)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)
    remote.out.done(f"wrote {written} bytes to {output}", {"output": str(output), "bytes": written})
