"""The permission catalogue: built-in resources, and adding or deleting custom ones."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Response
from starlette.responses import RedirectResponse

from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import errors_of, text
from keyplane.domain.catalogue import DEFAULT_ACTIONS
from keyplane.domain.errors import Conflict, KeyplaneError, NotFound

router = APIRouter(prefix="/console/resources")

NOTICES = {
    "created": "The resource was added. Keys and apps can now be granted its actions.",
    "deleted": "The resource was deleted.",
}
SEPARATORS = re.compile(r"[\s,]+")


def _catalogue(console: Console, status_code: int = 200, **context: Any) -> Response:
    return console.render(
        "resources/list.html",
        status_code,
        resources=console.kp.resources.catalogue(console.principal),
        values=context.pop("values", {"actions": ", ".join(DEFAULT_ACTIONS)}),
        errors=context.pop("errors", {}),
        **context,
    )


@router.get("")
def list_resources(console: SignedIn) -> Response:
    console.require("resources:read")
    notice = NOTICES.get(console.request.query_params.get("notice", ""))
    return _catalogue(console, notice=notice)


@router.post("")
def create_resource(posted: SignedForm) -> Response:
    console, form = posted
    console.require("resources:write")
    values = {k: text(form, k) for k in ("name", "title", "description", "actions")}
    try:
        console.kp.resources.create(
            console.principal,
            values["name"],
            values["title"] or None,
            values["description"],
            [a for a in SEPARATORS.split(values["actions"]) if a],
        )
    except KeyplaneError as exc:
        status = 409 if isinstance(exc, Conflict) else 422
        return _catalogue(console, status, values=values, errors=errors_of(exc))
    return RedirectResponse("/console/resources?notice=created", status_code=303)


@router.post("/{name}/delete")
def delete_resource(posted: SignedForm, name: str) -> Response:
    console = posted.console
    console.require("resources:delete")
    try:
        console.kp.resources.delete(console.principal, name)
    except NotFound:
        raise PageNotFound from None
    except Conflict as exc:  # still granted to keys or apps, or a built-in
        return _catalogue(console, 409, delete_error=str(exc), failed=name)
    return RedirectResponse("/console/resources?notice=deleted", status_code=303)
