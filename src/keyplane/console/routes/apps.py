"""Apps: the list, create, and one app's page with its Scopes and API keys tabs.

An app's page hosts four forms (rename, scopes, generate a key, delete). Each posts to its
own URL and, on an error, the page is drawn again with that form's messages beside its fields.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, Response
from starlette.responses import RedirectResponse

from keyplane.console import limits as limits_form
from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import (
    EXPIRY_CHOICES,
    errors_of,
    expiry,
    grid_rows,
    scopes,
    scopes_or_preset,
    text,
)
from keyplane.console.routes.presets import offered
from keyplane.console.routes.usage import usage_of
from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, Escalation, InvalidInput, KeyplaneError, NotFound
from keyplane.domain.ids import has_kind
from keyplane.domain.models import App
from keyplane.domain.scopes import FULL_ACCESS
from keyplane.services.apps import AppChanges
from keyplane.services.keys import IssuedKey, NewKey

router = APIRouter(prefix="/console/apps")

TABS = ("scopes", "keys")
NOTICES = {
    "created": "The app was created. Generate an API key for it in the API keys tab.",
    "renamed": "The app was saved.",
    "scopes-saved": "The scopes were saved. Every key of this app uses them from now on.",
    "ratelimits-saved": "The rate limits were saved. Every key of this app uses them from now on.",
    "deleted": "The app was deleted. All its keys have stopped working.",
    "key-deleted": "The key was deleted. Every service using it has stopped working.",
}


def _notice(console: Console) -> str | None:
    return NOTICES.get(console.request.query_params.get("notice", ""))


def _status(exc: KeyplaneError) -> int:
    return 409 if isinstance(exc, Conflict) else 422


def _scope_errors(exc: KeyplaneError) -> dict[str, str]:
    """As ``errors_of``, but "no scopes" is named as what it means: full access."""
    errors = errors_of(exc)
    if isinstance(exc, Escalation) and FULL_ACCESS in exc.scopes:
        errors["scopes"] = (
            "With no scope selected the app would have full access, which you cannot grant. "
            "Select the scopes it needs."
        )
    return errors


def _creators(console: Console, ids: Iterable[str]) -> dict[str, str]:
    """Who created each app, by name: a console user, or the API key that called the API."""
    names: dict[str, str] = {}
    for ident in set(ids):
        if has_kind(ident, "usr"):
            try:
                user = console.kp.users.get(console.principal, ident)
                names[ident] = user.name or user.email
            except NotFound:
                names[ident] = "a deleted user"
        elif has_kind(ident, "key"):
            names[ident] = f"API key {ident}"
        else:
            names[ident] = ident
    return names


def _app(console: Console, app_id: str) -> App:
    try:
        return console.kp.apps.get(console.principal, app_id)
    except NotFound:
        raise PageNotFound from None


def _grid(console: Console) -> dict[str, Any]:
    """The permission grid's rows and whether the org forbids "no scopes means full access"."""
    catalogue = Catalogue(console.kp.resources.catalogue(console.principal))
    org = console.kp.orgs.get(console.principal) if console.can("org:read") else None
    return {
        "rows": grid_rows(catalogue, console.principal),
        "org": org,
        "require_explicit": bool(org and org.require_explicit_scopes),
    }


@router.get("")
def list_apps(console: SignedIn) -> Response:
    console.require("apps:read")
    cursor = console.request.query_params.get("cursor") or None
    try:
        page = console.kp.apps.page(console.principal, limit=25, cursor=cursor)
    except InvalidInput:
        return RedirectResponse("/console/apps", status_code=303)
    return console.render(
        "apps/list.html",
        page=page,
        cursor=cursor,
        creators=_creators(console, (a.created_by for a in page.items)),
        notice=_notice(console),
    )


def _new_form(console: Console, status_code: int = 200, **context: Any) -> Response:
    return console.render(
        "apps/new.html",
        status_code,
        values=context.pop("values", {}),
        chosen=context.pop("chosen", set()),
        errors=context.pop("errors", {}),
        presets=offered(console),
        **_grid(console),
    )


@router.get("/new")
def new_app(console: SignedIn) -> Response:
    console.require("apps:write")
    return _new_form(console)


@router.post("")
def create_app(posted: SignedForm) -> Response:
    console, form = posted
    console.require("apps:write")
    chosen = scopes(form)
    try:
        own, preset = scopes_or_preset(form, offered(console))
        app = console.kp.apps.create(
            console.principal, text(form, "name"), text(form, "description"), own, preset=preset
        )
    except KeyplaneError as exc:
        values = {k: text(form, k) for k in ("name", "description", "preset")}
        return _new_form(
            console, _status(exc), values=values, chosen=set(chosen), errors=_scope_errors(exc)
        )
    return RedirectResponse(f"/console/apps/{app.id}?notice=created", status_code=303)


def _app_page(
    console: Console,
    app: App,
    *,
    tab: str,
    status_code: int = 200,
    notice: str | None = None,
    **forms: Any,
) -> Response:
    """The app's page; ``forms`` carries one form's submitted values and errors back."""
    keys = None
    cursor = (console.request.query_params.get("cursor") or None) if tab == "keys" else None
    if tab == "keys" and console.can("api_keys:read"):
        keys = console.kp.keys.page(console.principal, limit=25, cursor=cursor, app_id=app.id)
    grid = _grid(console)
    org = grid["org"]
    chosen = forms.pop("chosen", set(app.scopes))
    return console.render(
        "apps/detail.html",
        status_code,
        app=app,
        tab=tab,
        keys=keys,
        cursor=cursor,
        creator=_creators(console, [app.created_by])[app.created_by],
        chosen=chosen,
        # Scopes the app holds but this user may not grant: the grid cannot show them
        # checked-and-editable, and saving drops them, so the page says so beforehand.
        ungrantable=[s for s in app.scope_set.sorted() if not console.can(s)],
        expiry_choices=[
            d
            for d in EXPIRY_CHOICES
            if org is None or org.max_key_lifetime_days is None or d <= org.max_key_lifetime_days
        ],
        notice=notice,
        usage=usage_of(console, app_id=app.id),
        values=forms.pop("values", {"name": app.name, "description": app.description}),
        errors=forms.pop("errors", {}),
        scope_errors=forms.pop("scope_errors", {}),
        key_values=forms.pop("key_values", {"key_expiration": "30"}),
        key_errors=forms.pop("key_errors", {}),
        limit_values=forms.pop(
            "limit_values", {"ratelimits": limits_form.ratelimits_text(app.ratelimits)}
        ),
        limit_errors=forms.pop("limit_errors", {}),
        ratelimits_hint=limits_form.RATELIMITS_HINT,
        **grid,
        **forms,
    )


@router.get("/{app_id}")
def show_app(console: SignedIn, app_id: str) -> Response:
    console.require("apps:read")
    app = _app(console, app_id)
    notice = console.request.query_params.get("notice", "")
    tab = console.request.query_params.get("tab") or ("keys" if notice == "key-deleted" else "")
    if tab not in TABS:
        tab = "scopes"
    try:
        return _app_page(console, app, tab=tab, notice=NOTICES.get(notice))
    except InvalidInput:  # a cursor this list never returned
        return RedirectResponse(f"/console/apps/{app.id}?tab=keys", status_code=303)


@router.post("/{app_id}/rename")
def rename_app(posted: SignedForm, app_id: str) -> Response:
    console, form = posted
    console.require("apps:write")
    app = _app(console, app_id)
    values = {"name": text(form, "name"), "description": text(form, "description")}
    try:
        console.kp.apps.update(
            console.principal,
            app.id,
            AppChanges(name=values["name"], description=values["description"]),
        )
    except KeyplaneError as exc:
        tab = text(form, "tab") if text(form, "tab") in TABS else "scopes"
        return _app_page(
            console, app, tab=tab, status_code=_status(exc), values=values, errors=errors_of(exc)
        )
    return RedirectResponse(f"/console/apps/{app.id}?notice=renamed", status_code=303)


@router.post("/{app_id}/scopes")
def save_scopes(posted: SignedForm, app_id: str) -> Response:
    console, form = posted
    console.require("apps:write")
    app = _app(console, app_id)
    chosen = scopes(form)
    try:
        console.kp.apps.update(console.principal, app.id, AppChanges(scopes=chosen))
    except KeyplaneError as exc:
        return _app_page(
            console,
            app,
            tab="scopes",
            status_code=_status(exc),
            chosen=set(chosen),
            scope_errors=_scope_errors(exc),
        )
    return RedirectResponse(
        f"/console/apps/{app.id}?tab=scopes&notice=scopes-saved", status_code=303
    )


@router.post("/{app_id}/ratelimits")
def save_ratelimits(posted: SignedForm, app_id: str) -> Response:
    console, form = posted
    console.require("apps:write")
    app = _app(console, app_id)
    try:
        limits = limits_form.ratelimits(form)
        console.kp.apps.update(console.principal, app.id, AppChanges(ratelimits=limits))
    except KeyplaneError as exc:
        return _app_page(
            console,
            app,
            tab="scopes",
            status_code=_status(exc),
            limit_values={"ratelimits": text(form, "ratelimits")},
            limit_errors=limits_form.form_errors(exc),
        )
    return RedirectResponse(f"/console/apps/{app.id}?notice=ratelimits-saved", status_code=303)


@router.get("/{app_id}/keys")
def keys_tab(app_id: str) -> Response:
    """Where a reload lands after the show-once dialog closed: the page, never the secret."""
    return RedirectResponse(f"/console/apps/{app_id}?tab=keys", status_code=303)


@router.post("/{app_id}/keys")
def generate_key(posted: SignedForm, app_id: str) -> Response:
    console, form = posted
    console.require("apps:read")
    console.require("api_keys:write")
    app = _app(console, app_id)
    key_values = {"key_name": text(form, "name"), "key_expiration": text(form, "expiration")}
    issued: IssuedKey
    try:
        expires_at, expires_in_days = expiry(form, console.kp.clock())
        issued = console.kp.keys.create(
            console.principal,
            NewKey(
                name=key_values["key_name"],
                app_id=app.id,
                expires_at=expires_at,
                expires_in_days=expires_in_days,
            ),
        )
    except KeyplaneError as exc:
        key_errors = {
            f"key_{field}" if field in ("name", "expiration") else "key_form": message
            for field, message in errors_of(exc).items()
        }
        return _app_page(
            console,
            app,
            tab="keys",
            status_code=_status(exc),
            key_values=key_values,
            key_errors=key_errors,
        )
    # The only response that ever carries this secret: the page with the dialog open.
    return _app_page(console, _app(console, app_id), tab="keys", status_code=201, issued=issued)


@router.post("/{app_id}/delete")
def delete_app(posted: SignedForm, app_id: str) -> Response:
    console = posted.console
    console.require("apps:delete")
    try:
        console.kp.apps.delete(console.principal, app_id)
    except NotFound:
        raise PageNotFound from None
    return RedirectResponse("/console/apps?notice=deleted", status_code=303)
