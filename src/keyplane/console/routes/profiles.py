"""Profiles: the list, create and edit (settings typed as JSON), and delete."""

from __future__ import annotations

import json
from typing import Any

import orjson
from fastapi import APIRouter, Response
from starlette.datastructures import FormData
from starlette.responses import RedirectResponse

from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import errors_of, text
from keyplane.domain.errors import Conflict, InvalidInput, KeyplaneError, NotFound
from keyplane.domain.models import JSONObject, Profile
from keyplane.services.profiles import ProfileChanges

router = APIRouter(prefix="/console/profiles")

NOTICES = {
    "created": "The profile was created. Attach it to keys from their edit page.",
    "updated": "The profile was saved. Keys carrying it see the new settings from now on.",
    "deleted": "The profile was deleted.",
}
PREVIEW_CHARS = 80
JSON_KINDS = {
    list: "a list",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "true or false",
}


def _settings(raw: str) -> JSONObject:
    """The textarea's JSON object; an empty textarea means no settings."""
    if not raw:
        return {}
    try:
        value = json.loads(raw, parse_constant=_no_constant)
    except json.JSONDecodeError as exc:
        raise InvalidInput.field(
            "settings",
            f"settings must be a JSON object: {exc.msg} at line {exc.lineno}, column {exc.colno}",
        ) from None
    except (ValueError, RecursionError) as exc:
        raise InvalidInput.field("settings", f"settings must be a JSON object: {exc}") from None
    if not isinstance(value, dict):
        kind = "null" if value is None else JSON_KINDS.get(type(value), "not an object")
        raise InvalidInput.field(
            "settings", f'settings must be a JSON object such as {{"tier": "gold"}}, not {kind}'
        )
    # The store writes settings with orjson, which refuses what Python's json reads happily:
    # integers beyond 64 bits and nesting deeper than 255. Ask it here, to answer in words.
    try:
        orjson.dumps(value)
    except orjson.JSONEncodeError as exc:
        raise InvalidInput.field("settings", f"settings cannot be stored: {exc}") from None
    return value


def _no_constant(name: str) -> None:
    # Python's json reads NaN and Infinity, which are not JSON.
    raise ValueError(f"{name} is not a JSON value")


def _profile(console: Console, profile_id: str) -> Profile:
    try:
        return console.kp.profiles.get(console.principal, profile_id)
    except NotFound:
        raise PageNotFound from None


def _list(console: Console, status_code: int = 200, **context: Any) -> Response:
    cursor = console.request.query_params.get("cursor") or None
    page = console.kp.profiles.page(console.principal, limit=25, cursor=cursor)
    previews = {p.id: _preview(p.settings) for p in page.items}
    return console.render(
        "profiles/list.html", status_code, page=page, cursor=cursor, previews=previews, **context
    )


def _preview(settings: JSONObject) -> str:
    compact = json.dumps(settings, ensure_ascii=False, separators=(", ", ": "))
    return compact if len(compact) <= PREVIEW_CHARS else compact[: PREVIEW_CHARS - 1] + "…"


@router.get("")
def list_profiles(console: SignedIn) -> Response:
    console.require("profiles:read")
    try:
        return _list(console, notice=NOTICES.get(console.request.query_params.get("notice", "")))
    except InvalidInput:  # a cursor this list never returned
        return RedirectResponse("/console/profiles", status_code=303)


def _form(
    console: Console, profile: Profile | None, status_code: int = 200, **context: Any
) -> Response:
    values = context.pop("values", None) or {
        "name": profile.name if profile else "",
        "description": profile.description if profile else "",
        "settings": json.dumps(profile.settings, indent=2, ensure_ascii=False) if profile else "{}",
    }
    return console.render(
        "profiles/form.html",
        status_code,
        profile=profile,
        values=values,
        errors=context.pop("errors", {}),
        **context,
    )


def _values(form: FormData) -> dict[str, str]:
    return {k: text(form, k) for k in ("name", "description", "settings")}


def _failed(
    console: Console, profile: Profile | None, form: FormData, exc: KeyplaneError
) -> Response:
    status = 409 if isinstance(exc, Conflict) else 422
    return _form(console, profile, status, values=_values(form), errors=errors_of(exc))


@router.get("/new")
def new_profile(console: SignedIn) -> Response:
    console.require("profiles:write")
    return _form(console, None)


@router.post("/new")
def create_profile(posted: SignedForm) -> Response:
    console, form = posted
    console.require("profiles:write")
    try:
        console.kp.profiles.create(
            console.principal,
            text(form, "name"),
            text(form, "description"),
            _settings(text(form, "settings")),
        )
    except KeyplaneError as exc:
        return _failed(console, None, form, exc)
    return RedirectResponse("/console/profiles?notice=created", status_code=303)


@router.get("/{profile_id}/edit")
def edit_profile(console: SignedIn, profile_id: str) -> Response:
    console.require("profiles:write")
    return _form(console, _profile(console, profile_id))


@router.post("/{profile_id}/edit")
def update_profile(posted: SignedForm, profile_id: str) -> Response:
    console, form = posted
    console.require("profiles:write")
    profile = _profile(console, profile_id)
    try:
        console.kp.profiles.update(
            console.principal,
            profile.id,
            ProfileChanges(
                name=text(form, "name"),
                description=text(form, "description"),
                settings=_settings(text(form, "settings")),
            ),
        )
    except KeyplaneError as exc:
        return _failed(console, profile, form, exc)
    return RedirectResponse("/console/profiles?notice=updated", status_code=303)


@router.post("/{profile_id}/delete")
def delete_profile(posted: SignedForm, profile_id: str) -> Response:
    console = posted.console
    console.require("profiles:delete")
    try:
        console.kp.profiles.delete(console.principal, profile_id)
    except NotFound:
        raise PageNotFound from None
    except Conflict as exc:  # still attached to keys
        return _list(console, 409, delete_error=str(exc))
    return RedirectResponse("/console/profiles?notice=deleted", status_code=303)
