"""How the API commands print: rich tables and field lists for people, one JSON document
for programs (``--json``), errors on stderr either way.

JSON output is the API's own representation (the SDK models dumped with the server's field
names), so it stays as stable as the API: a list command prints one array of every item of
every page; a delete prints ``{"id": …, "deleted": true}``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from pydantic import BaseModel
    from rich.console import Console

    from keyplane_client import FieldError

Row = Sequence[object]


def plain(value: Any) -> Any:
    """SDK models and lists of them as JSON values, with the API's field names."""
    dump = getattr(value, "model_dump", None)
    if dump is not None:
        return dump(mode="json", by_alias=True)
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def when(moment: datetime | None) -> str:
    """A time in UTC to the second, as people read it in a table."""
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


class Output:
    def __init__(self, *, as_json: bool) -> None:
        self.as_json = as_json
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Piped output is not cut at 80 columns: a table's ids must stay whole for grep.
            width = None if sys.stdout.isatty() else 240
            self._console = Console(width=width, highlight=False, soft_wrap=False)
        return self._console

    def json(self, value: Any) -> None:
        typer.echo(json.dumps(plain(value), indent=2, ensure_ascii=False))

    def item(self, model: BaseModel, fields: Iterable[tuple[str, object]]) -> None:
        """One object: JSON, or its fields as two aligned columns."""
        if self.as_json:
            self.json(model)
            return
        from rich.table import Table

        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", no_wrap=True)
        table.add_column(overflow="fold")
        for label, value in fields:
            table.add_row(label, _cell(value))
        self.console.print(table)

    def table(
        self,
        models: Sequence[BaseModel],
        columns: Sequence[str],
        row: Callable[[Any], Row],
        empty: str,
    ) -> None:
        """Many objects: one JSON array, or a table (``empty`` when there are none)."""
        if self.as_json:
            self.json(list(models))
            return
        if not models:
            typer.echo(empty, err=True)
            return
        from rich.table import Table

        table = Table(box=None, pad_edge=False, show_edge=False, header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for model in models:
            table.add_row(*(_cell(value) for value in row(model)))
        self.console.print(table)

    def done(self, message: str, body: dict[str, Any]) -> None:
        """An action with nothing to show but that it happened (a deletion)."""
        if self.as_json:
            self.json(body)
        else:
            typer.echo(message)

    def notice(self, message: str) -> None:
        """A line for the person at the terminal, kept off stdout so pipes stay clean."""
        typer.echo(message, err=True)

    def error(self, message: str) -> None:
        typer.echo(f"error: {message}", err=True)

    def problem(
        self,
        status: int,
        title: str,
        detail: str,
        errors: Sequence[FieldError],
        body: dict[str, Any],
    ) -> None:
        """A problem document: title, detail and each field's message, on stderr; with
        --json, the document itself (stderr too: stdout only ever carries results)."""
        if self.as_json:
            document = body or {"status": status, "title": title, "detail": detail}
            typer.echo(json.dumps(document, ensure_ascii=False), err=True)
            return
        line = f"error: {title} ({status})"
        if detail and detail != title:
            line += f": {detail}"
        typer.echo(line, err=True)
        for error in errors:
            typer.echo(f"  {error.field}: {error.message}", err=True)


def _cell(value: object) -> str:
    from rich.markup import escape

    # Escaped: rich reads [brackets] as markup, and names and descriptions are anyone's text.
    return escape(_text(value))


def _text(value: object) -> str:
    if value is None or value in ("", [], {}):
        return "-"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={json.dumps(v)}" for k, v in value.items())
    return str(value)
