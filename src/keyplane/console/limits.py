"""Limits in console forms: rate limits and allowlists as text, one per line, and the
quota as a few inputs; turned into what the services take (they validate, naming fields
like ``ratelimits[1].limit``, which the form shows next to its one input)."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import FormData

from keyplane.console.forms import errors_of, text
from keyplane.domain.errors import FieldError, InvalidInput, KeyplaneError
from keyplane.domain.ratelimits import Quota, RateLimit

RATELIMITS_HINT = "One per line: name, limit, period in seconds (e.g. “burst 20 1”)."


def ratelimits(form: FormData, field: str = "ratelimits") -> list[Any]:
    """``name limit period_seconds`` per line; a line that is not three words is refused
    here, numbers and names by the domain."""
    parsed: list[Any] = []
    lines = [line for line in text(form, field).splitlines() if line.strip()]
    for index, line in enumerate(lines):
        words = line.replace(",", " ").split()
        if len(words) != 3 or not words[1].isdigit() or not words[2].isdigit():
            raise InvalidInput.field(
                f"{field}[{index}]", f"“{line.strip()[:60]}”: write name, limit, period"
            )
        parsed.append({"name": words[0], "limit": int(words[1]), "period_seconds": int(words[2])})
    return parsed


def allowlist(form: FormData) -> list[str]:
    return [line.strip() for line in text(form, "ip_allowlist").splitlines() if line.strip()]


def quota(form: FormData) -> dict[str, Any] | None:
    """The quota inputs, or None when left empty (no quota)."""
    remaining = text(form, "quota_remaining")
    amount = text(form, "quota_refill_amount")
    interval = text(form, "quota_refill_interval")
    if not remaining and not amount and interval in ("", "none"):
        return None
    value: dict[str, Any] = {}
    if remaining:
        value["remaining"] = _number("quota.remaining", remaining)
    if interval not in ("", "none") or amount:
        refill: dict[str, Any] = {"amount": _number("quota.refill.amount", amount or "x")}
        refill["interval"] = interval
        if interval == "monthly":
            refill["day_of_month"] = _number(
                "quota.refill.day_of_month", text(form, "quota_refill_day") or "1"
            )
        value["refill"] = refill
    return value


def quota_add(form: FormData) -> int | None:
    added = text(form, "quota_add")
    return _number("quota.add", added) if added else None


def _number(field: str, value: str) -> int:
    if not value.isdigit():
        raise InvalidInput(FieldError(field, "must be a whole number"))
    return int(value)


def form_errors(exc: KeyplaneError) -> dict[str, str]:
    """``errors_of``, with the limit fields' errors at their one input each, saying which
    line (``ratelimits[1].limit`` is line 2 of the box) or which quota input."""
    shown = errors_of(exc)
    if not isinstance(exc, InvalidInput):
        return shown
    placed: set[str] = set()
    for error in exc.errors:
        match = _NESTED.match(error.field)
        if match is None:
            continue
        box, index, rest = match.groups()
        if box in placed:
            continue
        placed.add(box)
        if box == "quota":
            where = (rest or "").lstrip(".").replace("refill.", "refill ").replace("_", " ")
            shown["quota"] = f"Quota {where}: {error.message}" if where else error.message
        elif index is not None:
            detail = f" ({rest.lstrip('.')})" if rest else ""
            shown[box] = f"Line {int(index) + 1}{detail}: {error.message}"
    return shown


_NESTED = re.compile(r"^(ratelimits|ip_allowlist|quota|route_table)(?:\[(\d+)\])?(.*)$")


def ratelimits_text(limits: tuple[RateLimit, ...]) -> str:
    return "\n".join(f"{r.name} {r.limit} {r.period_seconds}" for r in limits)


def quota_values(value: Quota | None) -> dict[str, str]:
    if value is None:
        return {}
    refill = value.refill
    return {
        "quota_remaining": str(value.remaining),
        "quota_refill_amount": str(refill.amount) if refill else "",
        "quota_refill_interval": refill.interval if refill else "none",
        "quota_refill_day": str(refill.day_of_month) if refill else "1",
    }
