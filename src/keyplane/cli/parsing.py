"""Option values as people type them (``30d``, ``a:b,c:d``, ``plan=pro``) turned into what
the API takes; a bad one is a usage error naming the option."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import typer

Metadata = Annotated[
    list[str] | None,
    typer.Option(
        "--metadata",
        metavar="KEY=VALUE",
        help="A metadata entry; repeatable. VALUE is read as JSON when it is JSON "
        '(5, true, {"a": 1}), else as text.',
    ),
]

_DURATION = re.compile(r"(\d+)([smhdw]?)")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "": 1}


def seconds_of(text: str, option: str) -> int:
    """``30m``, ``24h``, ``7d``, ``2w`` or plain seconds."""
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        raise typer.BadParameter(
            f"{text!r} is not a duration such as 30m, 24h, 7d or 2w", param_hint=option
        )
    return int(found[1]) * _UNITS[found[2]]


def expiry(expires_in: str | None, expires_at: str | None, *, days: bool = True) -> dict[str, Any]:
    """The API's expiry fields for --expires-in or --expires-at (at most one of them).

    A whole number of days goes as ``expires_in_days`` (the server counts from its own
    clock); anything finer as an ``expires_at`` computed here. ``days=False`` (a change to
    an existing key, where the API takes only ``expires_at``) always computes the time.
    """
    if expires_in and expires_at:
        raise typer.BadParameter("give --expires-in or --expires-at, not both")
    if expires_at:
        return {"expires_at": moment_of(expires_at, "--expires-at")}
    if expires_in:
        seconds = seconds_of(expires_in, "--expires-in")
        if seconds <= 0:
            raise typer.BadParameter("must be more than 0", param_hint="--expires-in")
        if days and seconds % 86400 == 0:
            return {"expires_in_days": seconds // 86400}
        return {"expires_at": datetime.now(UTC) + timedelta(seconds=seconds)}
    return {}


def moment_of(text: str, option: str) -> datetime:
    """An RFC 3339 time with its zone (``Z`` or ``+02:00``); a time without one is refused
    rather than read in some zone the user did not mean."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise typer.BadParameter(
            f"{text!r} is not a time with a zone, such as 2027-01-31T00:00:00Z",
            param_hint=option,
        )
    return moment


def scopes_of(values: list[str]) -> list[str]:
    """``--scopes a:b,c:d --scopes e:f`` as one list, in order, without repeats."""
    scopes = [s.strip() for value in values for s in value.split(",") if s.strip()]
    return list(dict.fromkeys(scopes))


def metadata_of(entries: list[str]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for entry in entries:
        name, sep, raw = entry.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{entry!r} is not KEY=VALUE", param_hint="--metadata")
        try:
            metadata[name] = json.loads(raw)
        except ValueError:
            metadata[name] = raw
    return metadata
