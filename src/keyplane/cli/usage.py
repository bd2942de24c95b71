"""``keyplane usage``: verifications and API calls over time, from a server's analytics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import typer

from keyplane.cli.parsing import moment_of, seconds_of
from keyplane.cli.remote import Remote, connected

Since = Annotated[
    str | None,
    typer.Option(
        "--since",
        metavar="WHEN",
        help="From this time (RFC 3339 with a zone) or this long ago (24h, 7d).",
    ),
]
Until = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="WHEN", help="Until this time or this long ago (default: now)."
    ),
]


def since_of(text: str | None, option: str) -> datetime | None:
    """A time as given, or ``24h`` as 24 hours before now."""
    if text is None:
        return None
    if text[:1].isdigit() and text[-1:].isalpha() and "T" not in text:
        return datetime.now(UTC) - timedelta(seconds=seconds_of(text, option))
    return moment_of(text, option)


@connected
def usage(
    remote: Remote,
    key: Annotated[str | None, typer.Option("--key", metavar="KEY_ID", help="One key.")] = None,
    app: Annotated[
        str | None, typer.Option("--app", metavar="APP_ID", help="One app's keys.")
    ] = None,
    since: Since = None,
    until: Until = None,
    granularity: Annotated[
        str, typer.Option("--granularity", metavar="STEP", help="minute, hour or day.")
    ] = "hour",
) -> None:
    """Answers per time bucket and outcome (VALID, EXPIRED, ...) for one key, one app, or
    (with neither) the whole organization. By hour over the last day unless told."""
    if granularity not in ("minute", "hour", "day"):
        raise typer.BadParameter("minute, hour or day", param_hint="--granularity")
    step: Literal["minute", "hour", "day"] = granularity  # type: ignore[assignment]
    series = remote.client.usage.series(
        key_id=key,
        app_id=app,
        start=since_of(since, "--since"),
        end=since_of(until, "--until"),
        granularity=step,
    )
    codes = sorted({code for point in series.data for code in point.counts})
    rows: list[Any] = [point for point in series.data if point.counts]

    def row(point: Any) -> list[object]:
        return [
            point.start,
            *(point.counts.get(code, 0) for code in codes),
            sum(point.counts.values()),
        ]

    out = remote.out
    if out.as_json:
        out.json(series)
        return
    what = f"key {key}" if key else f"app {app}" if app else "the organization"
    out.notice(
        f"usage of {what} by {series.granularity}, {series.start:%Y-%m-%d %H:%M} to "
        f"{series.end:%Y-%m-%d %H:%M} UTC (buckets without answers left out)"
    )
    out.table(rows, ["START", *codes, "TOTAL"], row, empty="no answers in this range")
