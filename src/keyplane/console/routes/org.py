"""Settings: the organization's name, its policies for new keys, and what still has full
access (the policies govern new keys; what exists already is listed here to be narrowed)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.responses import RedirectResponse

from keyplane.console.context import Console, SignedForm, SignedIn
from keyplane.console.forms import errors_of, text
from keyplane.domain.errors import InvalidInput, KeyplaneError
from keyplane.domain.limits import EXPIRES_IN_DAYS_MAX
from keyplane.services.orgs import OrgChanges

router = APIRouter(prefix="/console/settings")

LIFETIME_HINT = f"Enter a whole number of days from 1 to {EXPIRES_IN_DAYS_MAX}, or leave it empty."


def _lifetime(raw: str) -> int | None:
    """Empty means no limit; the service checks the range."""
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise InvalidInput.field("max_key_lifetime_days", LIFETIME_HINT)
    return int(raw)


def _page(console: Console, status_code: int = 200, **context: Any) -> Response:
    # Listing what grants everything needs reading both apps and keys.
    readable = console.can("apps:read") and console.can("api_keys:read")
    return console.render(
        "settings.html",
        status_code,
        org=console.kp.orgs.get(console.principal),
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
    try:
        console.kp.orgs.update(
            console.principal,
            OrgChanges(
                name=name,
                require_explicit_scopes=explicit,
                max_key_lifetime_days=_lifetime(lifetime),
            ),
        )
    except KeyplaneError as exc:
        errors = errors_of(exc)
        if "max_key_lifetime_days" in errors:  # the API's wording says "or null"
            errors["max_key_lifetime_days"] = LIFETIME_HINT
        return _page(
            console,
            422,
            values={"name": name, "explicit": explicit, "lifetime": lifetime},
            errors=errors,
        )
    return RedirectResponse("/console/settings?notice=saved", status_code=303)
