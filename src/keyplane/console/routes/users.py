"""Users: the table, invite (with the show-once set-password link), change role, remove.

The role select offers only the roles the signed-in user may give; the service still decides
(escalation, ownership, the last owner), and its refusals are shown on the page in words.
"""

from __future__ import annotations

from fastapi import APIRouter, Response
from starlette.responses import RedirectResponse

from keyplane.console.context import Console, PageNotFound, SignedForm, SignedIn
from keyplane.console.forms import errors_of, text
from keyplane.domain.catalogue import Catalogue
from keyplane.domain.errors import (
    Conflict,
    Escalation,
    Forbidden,
    InvalidInput,
    KeyplaneError,
    MissingScope,
    NotFound,
)
from keyplane.domain.models import Role
from keyplane.domain.roles import OWNERSHIP, ROLES, role_scopes
from keyplane.services.users import SETUP_LINK_LIFETIME, InvitedUser, NewUser, UserChanges

router = APIRouter(prefix="/console/users")

PAGE_SIZE = 50
NOTICES = {
    "role-changed": "The role was changed. The user was signed out and gets the new role "
    "at their next sign-in.",
    "deleted": "The user was removed and signed out everywhere.",
}


def grantable_roles(console: Console) -> list[Role]:
    """Roles no more powerful than the signed-in user's own; ``owner`` also needs org:own."""
    catalogue = Catalogue(console.kp.resources.catalogue(console.principal))
    return [
        role
        for role in ROLES
        if (role != "owner" or console.can(OWNERSHIP))
        and role_scopes(role, catalogue).issubset(console.principal.scopes)
    ]


def _status(exc: KeyplaneError) -> int:
    for kind, status_code in ((Forbidden, 403), (Conflict, 409), (InvalidInput, 422)):
        if isinstance(exc, kind):
            return status_code
    return 400


def _refusal(exc: KeyplaneError, role: str = "") -> str:
    """A plain sentence for a role change or removal the service refused."""
    if isinstance(exc, MissingScope) and exc.scope == OWNERSHIP:
        return "Only an owner can make, demote or remove an owner."
    if isinstance(exc, MissingScope):
        return f"Your role does not include {exc.scope!r}."
    if isinstance(exc, Escalation):
        return f"You cannot give the {role} role: it has permissions your own role lacks."
    if isinstance(exc, InvalidInput):
        return "Choose one of the offered roles."
    return str(exc)


def _list(
    console: Console,
    *,
    status_code: int = 200,
    notice: str | None = None,
    problem: str | None = None,
    invited: InvitedUser | None = None,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
) -> Response:
    request = console.request
    cursor = request.query_params.get("cursor") or None
    try:
        page = console.kp.users.page(console.principal, limit=PAGE_SIZE, cursor=cursor)
    except InvalidInput:
        return RedirectResponse("/console/users", status_code=303)
    setup_link = (
        str(request.url_for("set_password_form", token=invited.setup_token))
        if invited is not None and invited.setup_token
        else None
    )
    return console.render(
        "users/list.html",
        status_code,
        page=page,
        cursor=cursor,
        roles=grantable_roles(console),
        notice=notice,
        problem=problem,
        invited=invited,
        setup_link=setup_link,
        setup_link_hours=int(SETUP_LINK_LIFETIME.total_seconds() // 3600),
        values=values or {"role": "viewer"},
        errors=errors or {},
    )


@router.get("")
def list_users(console: SignedIn) -> Response:
    console.require("users:read")
    return _list(console, notice=NOTICES.get(console.request.query_params.get("notice", "")))


@router.post("")
def invite_user(posted: SignedForm) -> Response:
    console, form = posted
    console.require("users:write")
    values = {name: text(form, name) for name in ("email", "name", "role")}  # never the password
    raw_password = form.get("password")  # as typed: spaces are part of a password
    try:
        invited = console.kp.users.create(
            console.principal,
            NewUser(
                email=values["email"],
                name=values["name"],
                role=values["role"],  # type: ignore[arg-type] # the service checks it is a role
                password=raw_password if isinstance(raw_password, str) and raw_password else None,
            ),
        )
    except KeyplaneError as exc:
        errors = errors_of(exc)
        if isinstance(exc, Forbidden):
            errors = {"role": _refusal(exc, values["role"])}
        return _list(console, status_code=_status(exc), values=values, errors=errors)
    user = invited.user
    notice = (
        f"{user.email} was added as {user.role}. They can sign in with the password you chose."
        if invited.setup_token is None
        else f"{user.email} was invited as {user.role}. Send them the set-password link below."
    )
    return _list(console, status_code=201, notice=notice, invited=invited)


@router.post("/{user_id}/role")
def change_role(posted: SignedForm, user_id: str) -> Response:
    console, form = posted
    console.require("users:write")
    role = text(form, "role")
    try:
        console.kp.users.update(
            console.principal,
            user_id,
            UserChanges(role=role),  # type: ignore[arg-type] # the service checks it is a role
        )
    except NotFound:
        raise PageNotFound from None
    except KeyplaneError as exc:
        return _list(console, status_code=_status(exc), problem=_refusal(exc, role))
    return RedirectResponse("/console/users?notice=role-changed", status_code=303)


@router.post("/{user_id}/delete")
def delete_user(posted: SignedForm, user_id: str) -> Response:
    console = posted.console
    console.require("users:delete")
    try:
        console.kp.users.delete(console.principal, user_id)
    except NotFound:
        raise PageNotFound from None
    except KeyplaneError as exc:
        return _list(console, status_code=_status(exc), problem=_refusal(exc))
    return RedirectResponse("/console/users?notice=deleted", status_code=303)
