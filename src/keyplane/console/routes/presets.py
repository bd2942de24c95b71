"""Permission presets, beside the catalogue: the list, create and edit (a permission grid),
and delete. The create-key and create-app forms start from them (forms.scopes_or_preset)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse

from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import errors_of, grid_rows, scopes, text
from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import Conflict, InvalidInput, KeyplaneError, NotFound
from keyplane.domain.models import Preset
from keyplane.services.presets import PresetChanges

router = APIRouter(prefix="/console/resources/presets")

LIST = "/console/resources/presets"
NOTICES = {
    "created": "The preset was created. Start keys and apps from it in their create forms.",
    "updated": "The preset was saved. Keys and apps made from it earlier keep their scopes.",
    "deleted": "The preset was deleted. Keys and apps made from it keep their scopes.",
}


def offered(console: Console) -> list[Preset]:
    """The presets a create form offers: those the user may read (all, or none)."""
    if not console.can("resources:read"):
        return []
    return console.kp.presets.choices(console.principal)


def _preset(console: Console, preset_id: str) -> Preset:
    try:
        return console.kp.presets.get(console.principal, preset_id)
    except NotFound:
        raise PageNotFound from None


def _list(console: Console, status_code: int = 200, **context: Any) -> Response:
    cursor = console.request.query_params.get("cursor") or None
    page = console.kp.presets.page(console.principal, limit=25, cursor=cursor)
    return console.render("presets/list.html", status_code, page=page, cursor=cursor, **context)


@router.get("")
def list_presets(console: SignedIn) -> Response:
    console.require("resources:read")
    try:
        return _list(console, notice=NOTICES.get(console.request.query_params.get("notice", "")))
    except InvalidInput:  # a cursor this list never returned
        return RedirectResponse(LIST, status_code=303)


def _form(
    console: Console, preset: Preset | None, status_code: int = 200, **context: Any
) -> Response:
    values = context.pop("values", None) or {
        "name": preset.name if preset else "",
        "description": preset.description if preset else "",
    }
    catalogue = Catalogue(console.kp.resources.catalogue(console.principal))
    return console.render(
        "presets/form.html",
        status_code,
        preset=preset,
        values=values,
        chosen=context.pop("chosen", set(preset.scopes) if preset else set()),
        rows=grid_rows(catalogue, console.principal),
        errors=context.pop("errors", {}),
        **context,
    )


def _failed(
    console: Console, preset: Preset | None, form: FormData, exc: KeyplaneError
) -> Response:
    status = 409 if isinstance(exc, Conflict) else 422
    values = {k: text(form, k) for k in ("name", "description")}
    return _form(
        console, preset, status, values=values, chosen=set(scopes(form)), errors=errors_of(exc)
    )


@router.get("/new")
def new_preset(console: SignedIn) -> Response:
    console.require("resources:write")
    return _form(console, None)


@router.post("/new")
def create_preset(posted: SignedForm) -> Response:
    console, form = posted
    console.require("resources:write")
    try:
        console.kp.presets.create(
            console.principal, text(form, "name"), text(form, "description"), scopes(form)
        )
    except KeyplaneError as exc:
        return _failed(console, None, form, exc)
    return RedirectResponse(f"{LIST}?notice=created", status_code=303)


@router.get("/{preset_id}/edit")
def edit_preset(console: SignedIn, preset_id: str) -> Response:
    console.require("resources:write")
    return _form(console, _preset(console, preset_id))


@router.post("/{preset_id}/edit")
def update_preset(posted: SignedForm, preset_id: str) -> Response:
    console, form = posted
    console.require("resources:write")
    preset = _preset(console, preset_id)
    try:
        console.kp.presets.update(
            console.principal,
            preset.id,
            PresetChanges(
                name=text(form, "name"), description=text(form, "description"), scopes=scopes(form)
            ),
        )
    except KeyplaneError as exc:
        return _failed(console, preset, form, exc)
    return RedirectResponse(f"{LIST}?notice=updated", status_code=303)


@router.post("/{preset_id}/delete")
def delete_preset(posted: SignedForm, preset_id: str) -> Response:
    console = posted.console
    console.require("resources:delete")
    try:
        console.kp.presets.delete(console.principal, preset_id)
    except NotFound:
        raise PageNotFound from None
    return RedirectResponse(f"{LIST}?notice=deleted", status_code=303)
