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
from keyplane.domain.models import Preset
from keyplane.domain.scopes import ScopeSet
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


def scopes_or_preset(
    form: FormData, presets: Sequence[Preset]
) -> tuple[tuple[str, ...], str | None]:
    """``(scopes, preset)`` for a create form offering "Start from a preset".

    With JavaScript the grid shows the chosen preset's scopes (console.js); without it the
    grid stays as it was. Either way: a chosen preset and an unticked grid, or a grid ticked
    exactly as the preset, mean the preset (so the audit event names it); a preset and a
    grid that differ are refused, since the form cannot tell which one was meant.
    """
    chosen = scopes(form)
    ref = text(form, "preset")
    if not ref:
        return chosen, None
    if not chosen:
        return (), ref
    preset = next((p for p in presets if p.id == ref), None)
    if preset is not None and _same(chosen, preset.scopes):
        return (), ref
    name = f"“{preset.name}”" if preset is not None else "chosen"
    raise InvalidInput.field(
        "preset",
        f"the permissions ticked differ from the {name} preset: choose “No preset” to use "
        "them, or untick them all to use the preset",
    )


def _same(a: Sequence[str], b: Sequence[str]) -> bool:
    left, right = ScopeSet.of(a), ScopeSet.of(b)
    return left.issubset(right) and right.issubset(left)


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
