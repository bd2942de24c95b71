"""Settings: the organization's name, its policies for new keys, and what still has full
access (the policies govern new keys; what exists already is listed here to be narrowed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.responses import RedirectResponse

from keyplane.console import limits as limits_form
from keyplane.console import routetable
from keyplane.console.context import Console, SignedForm, SignedIn
from keyplane.console.forms import text
from keyplane.domain.errors import InvalidInput, KeyplaneError
from keyplane.domain.limits import (
    EXPIRES_IN_DAYS_MAX,
    RETENTION_DAYS_MAX,
    ROTATION_PERIOD_DAYS_MAX,
    WARNING_DAYS_MAX,
    WARNING_THRESHOLDS_MAX,
)
from keyplane.services.common import UNSET
from keyplane.services.orgs import OrgChanges

router = APIRouter(prefix="/console/settings")

LIFETIME_HINT = f"Enter a whole number of days from 1 to {EXPIRES_IN_DAYS_MAX}, or leave it empty."


RETENTION_HINT = f"Enter a whole number of days from 0 to {RETENTION_DAYS_MAX}."
WARNING_HINT = (
    f"Enter up to {WARNING_THRESHOLDS_MAX} different whole numbers of days from 1 to "
    f"{WARNING_DAYS_MAX}, separated by commas, or leave it empty for no warnings."
)
ROTATION_HINT = (
    f"Enter a whole number of days from 1 to {ROTATION_PERIOD_DAYS_MAX}, or leave it empty."
)


def _days(raw: str) -> int | None:
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= 6 else None


def _lifetime(raw: str) -> int | None:
    """Empty means no limit; the service checks the range."""
    if not raw:
        return None
    days = _days(raw)
    if days is None:
        raise InvalidInput.field("max_key_lifetime_days", LIFETIME_HINT)
    return days


def _retention(raw: str) -> int:
    days = _days(raw or "0")
    if days is None:
        raise InvalidInput.field("expired_key_retention_days", RETENTION_HINT)
    return days


def _warnings(raw: str) -> tuple[int, ...]:
    """Thresholds as typed, "7, 1" (commas or spaces); empty means none. The service checks."""
    parts = [p for p in raw.replace(",", " ").split() if p]
    days = [_days(p) for p in parts]
    if any(d is None for d in days):
        raise InvalidInput.field("expiry_warning_days", WARNING_HINT)
    return tuple(d for d in days if d is not None)


def _rotation(raw: str) -> int | None:
    if not raw:
        return None
    days = _days(raw)
    if days is None:
        raise InvalidInput.field("rotation_period_days", ROTATION_HINT)
    return days


def _page(console: Console, status_code: int = 200, **context: Any) -> Response:
    # Listing what grants everything needs reading both apps and keys.
    readable = console.can("apps:read") and console.can("api_keys:read")
    org = console.kp.orgs.get(console.principal)
    return console.render(
        "settings.html",
        status_code,
        org=org,
        ratelimits_text=limits_form.ratelimits_text(org.ratelimits),
        ratelimits_hint=limits_form.RATELIMITS_HINT,
        route_table_text=routetable.route_table_text(org.route_table),
        route_table_hint=routetable.ROUTE_TABLE_HINT,
        full_access=console.kp.keys.full_access(console.principal) if readable else None,
        **context,
    )


@router.get("")
def show_settings(console: SignedIn) -> Response:
    console.require("org:read")
    saved = console.request.query_params.get("notice") == "saved"
    return _page(
        console, values=None, errors={}, notice="The settings were saved." if saved else None
    )


@router.post("")
def save_settings(posted: SignedForm) -> Response:
    console, form = posted
    console.require("org:write")
    name = text(form, "name")
    explicit = form.get("require_explicit_scopes") is not None  # unchecked boxes are not sent
    lifetime = text(form, "max_key_lifetime_days")
    retention = text(form, "expired_key_retention_days")
    warnings = text(form, "expiry_warning_days")
    rotation = text(form, "rotation_period_days")
    # A form from before the setting existed sends none: the setting stays as it is.
    leaked = text(form, "leaked_key_action") if "leaked_key_action" in form else None
    try:
        console.kp.orgs.update(
            console.principal,
            OrgChanges(
                name=name,
                require_explicit_scopes=explicit,
                max_key_lifetime_days=_lifetime(lifetime),
                expired_key_retention_days=_retention(retention),
                expiry_warning_days=_warnings(warnings),
                rotation_period_days=_rotation(rotation),
                ratelimits=limits_form.ratelimits(form) if "ratelimits" in form else UNSET,
                leaked_key_action=leaked if leaked is not None else UNSET,
                route_table=routetable.route_table(form) if "route_table" in form else UNSET,
            ),
        )
    except KeyplaneError as exc:
        errors = limits_form.form_errors(exc)
        # The API's wording speaks of null and lists; the form's of empty boxes and commas.
        for field, hint in (
            ("max_key_lifetime_days", LIFETIME_HINT),
            ("expired_key_retention_days", RETENTION_HINT),
            ("expiry_warning_days", WARNING_HINT),
            ("rotation_period_days", ROTATION_HINT),
        ):
            if field in errors:
                errors[field] = hint
        return _page(
            console,
            422,
            values={
                "name": name,
                "explicit": explicit,
                "lifetime": lifetime,
                "retention": retention,
                "warnings": warnings,
                "rotation": rotation,
                "ratelimits": text(form, "ratelimits"),
                "leaked": leaked,
                "route_table": text(form, "route_table"),
            },
            errors=errors,
        )
    return RedirectResponse("/console/settings?notice=saved", status_code=303)
