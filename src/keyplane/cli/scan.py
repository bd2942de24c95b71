"""``keyplane scan PATH… [--git] [--json]``: find leaked keyplane keys."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

import typer

from keyplane.cli.common import fail
from keyplane.scanning import (
    Finding,
    ScanError,
    check_paths,
    git_root,
    scan_git_history,
    scan_paths,
)

FOUND = 1
ERROR = 2


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


def _line(finding: Finding) -> str:
    where = f"{finding.path}:{finding.line}:{finding.column}"
    if finding.commit:
        where = f"{finding.commit[:12]}:{where}"
    return f"{where}  {finding.masked} ({finding.environment})"


def _findings(paths: list[str], git: bool) -> Iterable[Finding]:
    if not git:
        check_paths(paths)
        return scan_paths(paths, _warn, sys.stdin.buffer)
    # Every path checked before the first line is printed; two paths in one repository
    # scan its history once.
    repositories = list(dict.fromkeys(git_root(Path(name)) for name in paths))
    return (found for root in repositories for found in scan_git_history(root, _warn))


def scan(
    paths: Annotated[
        list[str],
        typer.Argument(
            metavar="PATH",
            help="Files and directories to scan (recursively, without .git); - reads stdin.",
            show_default=False,
        ),
    ],
    git: Annotated[
        bool,
        typer.Option(
            "--git",
            help=(
                "Scan the history of the git repository each PATH is in (every commit of "
                "every branch and tag) instead of the files."
            ),
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the findings as one JSON list.")
    ] = False,
) -> None:
    """Find keyplane keys in files or git history; print where, with the key masked.

    A key is reported only if its checksum holds, so random strings of the same shape are
    not. Binary files and files over 10 MiB are skipped (the latter with a warning).

    Exit status: 0 no key found, 1 keys found, 2 usage error or the scan could not run.
    """
    if git and "-" in paths:
        raise fail("--git reads repositories, not standard input", ERROR)
    found: list[Finding] = []
    try:
        for finding in _findings(paths, git):
            found.append(finding)
            if not as_json:
                typer.echo(_line(finding))
    except ScanError as exc:
        raise fail(str(exc), ERROR) from exc
    if as_json:
        typer.echo(json.dumps([finding.as_json() for finding in found], indent=2))
    if found:
        if not as_json:
            plural = "s" if len(found) > 1 else ""
            typer.echo(
                f"{len(found)} keyplane key{plural} found: treat each as leaked (rotate or "
                "delete it in keyplane), then remove it from the files or the history.",
                err=True,
            )
        raise typer.Exit(FOUND)
