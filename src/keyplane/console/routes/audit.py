"""The audit log page: the organization's events, newest first, with the API's filters and
a readable summary of what each change did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final
from urllib.parse import urlencode

from fastapi import APIRouter, Response

from keyplane.console.context import SignedIn
from keyplane.domain.audit import ACTIONS, AuditQuery
from keyplane.domain.errors import FieldError, InvalidInput
from keyplane.domain.models import AuditEvent, Page

router = APIRouter(prefix="/console/audit")

FILTERS: Final = ("actor_id", "action", "target_id", "from", "to")
PAGE_SIZE: Final = 50
VALUE_CHARS: Final = 60


@router.get("")
def audit_log(console: SignedIn) -> Response:
    console.require("audit:read")
    params = console.request.query_params
    values = {name: (params.get(name) or "").strip() for name in FILTERS}
    cursor = params.get("cursor") or None
    page: Page[AuditEvent] = Page([], None)
    errors: list[FieldError] = []
    try:
        query = AuditQuery(
            values["actor_id"] or None,
            values["action"] or None,
            values["target_id"] or None,
            _moment("from", values["from"]),
            _moment("to", values["to"]),
        )
        page = console.kp.audit.page(console.principal, query, limit=PAGE_SIZE, cursor=cursor)
    except InvalidInput as exc:
        errors = exc.errors
    chosen = {k: v for k, v in values.items() if v}
    return console.render(
        "audit/list.html",
        422 if errors else 200,
        page=page,
        values=values,
        errors=errors,
        actions=sorted(ACTIONS),
        summaries={e.id: summary(e) for e in page.items},
        first_url="/console/audit?" + urlencode(chosen) if cursor else None,
        next_url=(
            "/console/audit?" + urlencode({**chosen, "cursor": page.next_cursor})
            if page.next_cursor
            else None
        ),
    )


def _moment(field: str, value: str) -> datetime | None:
    """A datetime-local field's value (no zone: read as UTC, as the page says) or RFC 3339."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput.field(
            field, f"{field} must be a time such as 2026-11-30T16:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def summary(event: AuditEvent) -> list[str]:
    """One line per changed field, ``description: "" → "Invoices"``; other details after."""
    lines = [
        f"{field}: {_shown(change.get('before'))} → {_shown(change.get('after'))}"
        for field, change in sorted(event.changes.items())
    ]
    lines += [
        f"{name}: {_shown(value)}"
        for name, value in sorted(event.details.items())
        if name != "name"
    ]
    return lines


def _shown(value: object) -> str:
    if value is None:
        text = "none"
    elif isinstance(value, list):
        text = ", ".join(str(v) for v in value) or "none"
    elif isinstance(value, str):
        text = f"“{value}”"
    else:
        text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= VALUE_CHARS else text[: VALUE_CHARS - 1] + "…"
