"""API keys: the table, create (with the show-once dialog), edit, rotate and delete."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Response
from starlette.responses import RedirectResponse

from keyplane.console import limits as limits_form
from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import (
    EXPIRY_CHOICES,
    errors_of,
    expiry,
    grid_rows,
    optional,
    scopes,
    scopes_or_preset,
    text,
)
from keyplane.console.routes.presets import offered
from keyplane.console.routes.usage import usage_of
from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput, KeyplaneError, NotFound
from keyplane.domain.expiry import expires_soon, rotation_due
from keyplane.domain.models import Page
from keyplane.services.common import UNSET
from keyplane.services.keys import IssuedKey, KeyChanges, KeyView, NewKey
from keyplane.services.rotation import GRACE_DEFAULT_SECONDS

router = APIRouter(prefix="/console/keys")

KEY_STATUSES = ("active", "inactive", "expired")
ENVIRONMENTS = ("live", "test")
# The grace periods the rotate form offers, in seconds (the API takes any from 0 to 30 days).
GRACE_CHOICES = (
    (0, "None: the old key stops now"),
    (3600, "1 hour"),
    (86_400, "1 day"),
    (7 * 86_400, "7 days"),
    (30 * 86_400, "30 days"),
)
NOTICES = {
    "updated": "The key was updated.",
    "deleted": "The key was deleted. Every service using it has stopped working.",
}


def _badges(console: Console, views: list[KeyView]) -> dict[str, list[tuple[str, str]]]:
    """Each key's lifecycle badges, (css class, words): "expires soon" within the
    organization's first (largest) warning threshold, "rotation due" past its rotation
    period; neither for a key rotated out (domain/expiry.py)."""
    org = console.kp.orgs.get(console.principal)
    now = console.kp.clock()
    return {
        view.key.id: [
            (css, words)
            for css, words, due in (
                ("expires-soon", "Expires soon", expires_soon(view.key, org, now)),
                ("rotation-due", "Rotation due", rotation_due(view.key, org, now)),
            )
            if due
        ]
        for view in views
    }


def _choices(console: Console) -> dict[str, Any]:
    kp, principal = console.kp, console.principal
    apps = kp.apps.page(principal, limit=200).items if console.can("apps:read") else []
    profiles = kp.profiles.page(principal, limit=200).items if console.can("profiles:read") else []
    return {"apps": apps, "profiles": profiles, "presets": offered(console)}


def _list(
    console: Console,
    *,
    status_code: int = 200,
    issued: IssuedKey | None = None,
    notice: str | None = None,
) -> Response:
    params = console.request.query_params
    status = params.get("status") if params.get("status") in KEY_STATUSES else None
    environment = params.get("environment") if params.get("environment") in ENVIRONMENTS else None
    app_id = params.get("app_id") or None
    q = (params.get("q") or "").strip() or None
    cursor = params.get("cursor") or None
    filters = {"q": q, "status": status, "environment": environment, "app_id": app_id}
    search_error = None
    try:
        page = console.kp.keys.page(
            console.principal,
            limit=25,
            cursor=cursor,
            status=status,  # type: ignore[arg-type] # one of KEY_STATUSES
            app_id=app_id,
            q=q,
            environment=environment,  # type: ignore[arg-type] # one of ENVIRONMENTS
        )
    except InvalidInput as exc:
        search_error = errors_of(exc).get("q")
        if search_error is None:  # a cursor this list never returned
            return RedirectResponse("/console/keys", status_code=303)
        page = Page([], None)
    choices = _choices(console)
    return console.render(
        "keys/list.html",
        status_code,
        page=page,
        filters=filters,
        search_error=search_error,
        # The current filters as a query string, for the pager's links.
        filter_query=urlencode({k: v for k, v in filters.items() if v}),
        badges=_badges(console, page.items),
        cursor=cursor,
        issued=issued,
        notice=notice,
        app_names={a.id: a.name for a in choices["apps"]},
        profile_names={p.id: p.name for p in choices["profiles"]},
        **choices,
    )


@router.get("")
def list_keys(console: SignedIn) -> Response:
    console.require("api_keys:read")
    return _list(console, notice=NOTICES.get(console.request.query_params.get("notice", "")))


def _new_form(console: Console, status_code: int = 200, **context: Any) -> Response:
    catalogue = Catalogue(console.kp.resources.catalogue(console.principal))
    # The key policy shapes this form for everyone who may create keys, org:read or not.
    org = console.kp.orgs.get(console.principal)
    today = console.kp.clock().date()
    latest = (
        today + timedelta(days=org.max_key_lifetime_days) if org.max_key_lifetime_days else None
    )
    return console.render(
        "keys/new.html",
        status_code,
        rows=grid_rows(catalogue, console.principal),
        org=org,
        expiry_choices=[
            d
            for d in EXPIRY_CHOICES
            if org is None or org.max_key_lifetime_days is None or d <= org.max_key_lifetime_days
        ],
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
        earliest_date=today + timedelta(days=1),
        latest_date=latest,
        ratelimits_hint=limits_form.RATELIMITS_HINT,
        **_choices(console),
        **context,
    )


@router.get("/new")
def new_key(console: SignedIn) -> Response:
    console.require("api_keys:write")
    return _new_form(console, values={"expiration": "30", "environment": "live"})


@router.post("")
def create_key(posted: SignedForm) -> Response:
    console, form = posted
    console.require("api_keys:write")
    values = {k: v for k, v in form.multi_items() if k != "csrf_token"}
    chosen = scopes(form)
    try:
        own, preset = scopes_or_preset(form, offered(console))
        now = console.kp.clock()
        expires_at, expires_in_days = _capped(console, *expiry(form, now), now)
        issued = console.kp.keys.create(
            console.principal,
            NewKey(
                name=text(form, "name"),
                description=text(form, "description"),
                scopes=own,
                preset=preset,
                app_id=optional(form, "app_id"),
                expires_at=expires_at,
                expires_in_days=expires_in_days,
                profile_id=optional(form, "profile_id"),
                environment="test" if text(form, "environment") == "test" else "live",
                ratelimits=limits_form.ratelimits(form),
                quota=limits_form.quota(form),
                ip_allowlist=limits_form.allowlist(form),
            ),
        )
    except KeyplaneError as exc:
        errors = limits_form.form_errors(exc)
        if text(form, "expiration") == "custom" and "expiration" in errors:
            errors["expires_on"] = errors.pop("expiration")
        return _new_form(console, 422, values=values, chosen=set(chosen), errors=errors)
    return _list(console, status_code=201, issued=issued)


def _capped(
    console: Console, expires_at: datetime | None, in_days: int | None, now: datetime
) -> tuple[datetime | None, int | None]:
    """A custom date means the end of that day, except on the last day the org's maximum
    lifetime allows, where it means that instant (else the last offered day is refused)."""
    days = console.kp.orgs.get(console.principal).max_key_lifetime_days
    if expires_at is not None and days is not None:
        cap = now + timedelta(days=days)
        if expires_at > cap and expires_at.date() == cap.date():
            return cap, in_days
    return expires_at, in_days


CHILDREN_SHOWN = 50


def _key(console: Console, key_id: str) -> Any:
    try:
        return console.kp.keys.get(console.principal, key_id)
    except NotFound:
        raise PageNotFound from None


def _edit(console: Console, view: Any, status_code: int = 200, **context: Any) -> Response:
    key = view.key
    limit_values = context.pop("limit_values", None) or {
        "ratelimits": limits_form.ratelimits_text(key.ratelimits),
        "ip_allowlist": "\n".join(key.ip_allowlist),
        **limits_form.quota_values(key.quota),
    }
    if view.limits is not None and view.limits.quota_remaining is not None:
        limit_values.setdefault("quota_remaining", str(view.limits.quota_remaining))
    return console.render(
        "keys/edit.html",
        status_code,
        view=view,
        badges=_badges(console, [view]),
        errors=context.pop("errors", {}),
        limit_values=limit_values,
        ratelimits_hint=limits_form.RATELIMITS_HINT,
        grace_choices=GRACE_CHOICES,
        grace_default=GRACE_DEFAULT_SECONDS,
        usage=usage_of(console, key_id=view.key.id),
        # The keys this one delegated to (POST /v1/keys/{id}/children), newest first.
        children=console.kp.children.page(console.principal, key.id, limit=CHILDREN_SHOWN),
        **_choices(console),
        **context,
    )


@router.get("/{key_id}/edit")
def edit_key(console: SignedIn, key_id: str) -> Response:
    console.require("api_keys:write")
    return _edit(console, _key(console, key_id))


@router.post("/{key_id}/rotate")
def rotate_key(posted: SignedForm, key_id: str) -> Response:
    console, form = posted
    console.require("api_keys:write")
    view = _key(console, key_id)
    try:
        grace = text(form, "grace_period_seconds")
        if not grace.isdigit():
            raise InvalidInput.field("grace_period_seconds", "choose a grace period")
        rotated = console.kp.rotation.rotate(console.principal, key_id, int(grace))
    except KeyplaneError as exc:
        status_code = 409 if isinstance(exc, Conflict) else 422
        return _edit(console, view, status_code, errors=errors_of(exc))
    notice = f"The key “{view.key.name}” was rotated. The old key " + (
        "has stopped working."
        if rotated.grace_ends_at <= console.kp.clock()
        else f"keeps working until {rotated.grace_ends_at:%Y-%m-%d %H:%M} UTC."
    )
    return _list(console, status_code=201, issued=rotated.issued, notice=notice)


@router.post("/{key_id}/edit")
def update_key(posted: SignedForm, key_id: str) -> Response:
    console, form = posted
    console.require("api_keys:write")
    view = _key(console, key_id)
    status = text(form, "status")
    try:
        if status not in ("active", "inactive"):
            raise InvalidInput.field("status", "choose active or inactive")
        console.kp.keys.update(
            console.principal,
            key_id,
            KeyChanges(
                status=status,  # type: ignore[arg-type]
                profile_id=optional(form, "profile_id"),
                # A form without the limit inputs (an older page) leaves them alone.
                ratelimits=limits_form.ratelimits(form) if "ratelimits" in form else UNSET,
                ip_allowlist=limits_form.allowlist(form) if "ip_allowlist" in form else UNSET,
                quota=_quota_change(form, view) if "quota_remaining" in form else UNSET,
            ),
        )
    except KeyplaneError as exc:
        sent = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return _edit(console, view, 422, errors=limits_form.form_errors(exc), limit_values=sent)
    return RedirectResponse("/console/keys?notice=updated", status_code=303)


def _quota_change(form: Any, view: KeyView) -> Any:
    """What the edit form asks of the quota: an addition, a replacement when its inputs
    differ from what the page showed, its removal when emptied, or nothing (UNSET), so
    that saving a status change never resets a count spent meanwhile."""
    added = limits_form.quota_add(form)
    if added is not None:
        return {"add": added}
    asked = limits_form.quota(form)
    shown = limits_form.quota_values(view.key.quota)
    if view.limits is not None and view.limits.quota_remaining is not None:
        shown["quota_remaining"] = str(view.limits.quota_remaining)
    if asked is None:
        return None if view.key.quota is not None else UNSET
    if view.key.quota is None:
        return asked
    fields = ("quota_remaining", "quota_refill_amount", "quota_refill_interval", "quota_refill_day")
    return UNSET if all(text(form, f) == shown.get(f, "") for f in fields) else asked


@router.post("/{key_id}/delete")
def delete_key(posted: SignedForm, key_id: str) -> Response:
    console, form = posted
    console.require("api_keys:delete")
    try:
        console.kp.keys.delete(console.principal, key_id)
    except NotFound:
        raise PageNotFound from None
    back = text(form, "back")
    if back.startswith("/console/apps/") and "//" not in back:
        joiner = "&" if "?" in back else "?"
        return RedirectResponse(f"{back}{joiner}notice=key-deleted", status_code=303)
    return RedirectResponse("/console/keys?notice=deleted", status_code=303)
