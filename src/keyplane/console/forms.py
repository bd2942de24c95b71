"""Reading console forms into service inputs, and domain errors into per-field messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

from starlette.datastructures import FormData

from keyplane.domain.catalogue import Catalogue, Resource
from keyplane.domain.errors import (
    Conflict,
    Escalation,
    FieldError,
    InvalidInput,
    KeyplaneError,
    MissingScope,
)
from keyplane.services.common import Principal

EXPIRY_CHOICES = (7, 30, 60, 90)


def text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def optional(form: FormData, name: str) -> str | None:
    return text(form, name) or None


def scopes(form: FormData) -> tuple[str, ...]:
    """The checked boxes of a permission grid; a resource's "All" wins over its actions."""
    chosen = [v for v in form.getlist("scope") if isinstance(v, str) and v]
    wildcards = {s.partition(":")[0] for s in chosen if s.endswith(":*")}
    return tuple(
        sorted(s for s in chosen if s.endswith(":*") or s.partition(":")[0] not in wildcards)
    )


def expiry(form: FormData, now: datetime) -> tuple[datetime | None, int | None]:
    """``(expires_at, expires_in_days)`` from the expiration select and custom date."""
    choice = text(form, "expiration")
    if choice in ("", "none"):
        return None, None
    if choice == "custom":
        raw = text(form, "expires_on")
        try:
            day = datetime.strptime(raw, "%Y-%m-%d").date()  # noqa: DTZ007 - a calendar date
        except ValueError:
            raise InvalidInput.field("expires_on", "choose a date") from None
        return datetime.combine(day, time(23, 59, 59), tzinfo=UTC), None
    if choice.isdigit():
        return None, int(choice)
    raise InvalidInput.field("expiration", "choose one of the offered expirations")


def errors_of(exc: KeyplaneError) -> dict[str, str]:
    """Field name -> plain message, for showing next to each input."""
    if isinstance(exc, InvalidInput):
        found: list[FieldError] = exc.errors
    elif isinstance(exc, Escalation):
        found = [FieldError(exc.field, str(exc))]
    elif isinstance(exc, Conflict):
        found = [FieldError(exc.field or "form", str(exc))]
    elif isinstance(exc, MissingScope):
        found = [FieldError("form", f"Your role does not include {exc.scope!r}.")]
    else:
        found = [FieldError("form", str(exc))]
    messages: dict[str, str] = {}
    for error in found:
        field = error.field.split("[")[0].replace("expires_in_days", "expiration")
        field = field.replace("expires_at", "expiration")
        messages.setdefault(field, _sentence(error.field, error.message))
    return messages


def _sentence(field: str, message: str) -> str:
    message = message[0].upper() + message[1:] if message else message
    if "[" in field and "scope" in field:
        return message
    return message if message.endswith(".") else message + "."


def grid_rows(catalogue: Catalogue, principal: Principal) -> list[dict[str, object]]:
    """One row per resource: its actions and whether the user may grant each (and All)."""
    return [_row(resource, principal) for resource in catalogue.all()]


def _row(resource: Resource, principal: Principal) -> dict[str, object]:
    actions: Sequence[str] = resource.actions
    return {
        "name": resource.name,
        "title": resource.title,
        "builtin": resource.builtin,
        "actions": [
            {
                "action": a,
                "scope": f"{resource.name}:{a}",
                "grantable": principal.scopes.covers(f"{resource.name}:{a}"),
            }
            for a in actions
        ],
        "all_grantable": principal.scopes.covers(f"{resource.name}:*"),
    }


def days_from(now: datetime, days: int) -> datetime:
    return now + timedelta(days=days)
