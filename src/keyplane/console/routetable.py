"""The route table in the settings form: one rule per line, ``METHOD PATH [SCOPE …]``,
turned into what the organization service takes (it validates, naming fields like
``route_table[1].path``, which limits.form_errors shows as "Line 2 (path): …")."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData

from keyplane.console.forms import text
from keyplane.domain.errors import InvalidInput
from keyplane.domain.routes import Route

ROUTE_TABLE_HINT = (
    "One rule per line: method (or * for any), path, then the permissions it needs "
    "(none: any valid key), e.g. “GET /models/** models:read”. The first matching line "
    "decides; a request that matches no line is refused. In a path, * matches within one "
    "segment and ** (a whole segment) one or more segments; the query string is ignored."
)


def route_table(form: FormData, field: str = "route_table") -> list[Any]:
    """A line needs a method and a path; the rest is checked by the domain."""
    parsed: list[Any] = []
    lines = [line for line in text(form, field).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        words = line.replace(",", " ").split()
        if len(words) < 2:
            raise InvalidInput.field(
                f"{field}[{index}]", f"“{line.strip()[:60]}”: write a method, a path, scopes"
            )
        parsed.append({"method": words[0], "path": words[1], "scopes": words[2:]})
    return parsed


def route_table_text(routes: tuple[Route, ...]) -> str:
    return "\n".join(" ".join((r.method, r.path, *r.scopes)) for r in routes)
