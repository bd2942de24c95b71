"""/v1/users: the people who sign in to the console, and their roles."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import Services, UsersDelete, UsersRead, UsersWrite, no_store
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.api.schemas.users import UserCreate, UserCreated, UserOut, UserUpdate
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.services.users import NewUser, UserChanges

router = APIRouter(prefix="/v1/users", tags=["users"])

SETUP_LINK_PATH = "/console/set-password/"


@router.post("", status_code=201, responses=problems(409, 422), summary="Invite a user")
def create_user(
    body: UserCreate, principal: UsersWrite, kp: Services, response: Response
) -> UserCreated:
    """Creates a user with a role no more powerful than the caller's. Without a password
    the answer carries a one-time set-password link; only owners can make owners. An email
    that already signs in to another organization is answered the same way: the person
    joins through the link with the password they have (an initial password is never set
    for them)."""
    invited = kp.users.create(
        principal, NewUser(email=body.email, name=body.name, role=body.role, password=body.password)
    )
    link = SETUP_LINK_PATH + invited.setup_token if invited.setup_token else None
    if link is not None:
        no_store(response)  # the link sets the password: a secret like a key
    return UserCreated(**UserOut.of(invited.user).model_dump(), set_password_url=link)


@router.get("", responses=problems(422), summary="List users")
def list_users(
    principal: UsersRead, kp: Services, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Paged[UserOut]:
    page = kp.users.page(principal, limit=limit, cursor=cursor)
    return Paged[UserOut](data=[UserOut.of(u) for u in page.items], next_cursor=page.next_cursor)


@router.get("/{user_id}", responses=problems(404), summary="Read a user")
def get_user(user_id: str, principal: UsersRead, kp: Services) -> UserOut:
    return UserOut.of(kp.users.get(principal, user_id))


@router.patch(
    "/{user_id}", responses=problems(404, 409, 422), summary="Rename a user or change their role"
)
def update_user(user_id: str, body: UserUpdate, principal: UsersWrite, kp: Services) -> UserOut:
    """The last owner cannot be demoted (409)."""
    return UserOut.of(kp.users.update(principal, user_id, changes_from(body, UserChanges)))


@router.delete("/{user_id}", status_code=204, responses=problems(404, 409), summary="Remove a user")
def delete_user(user_id: str, principal: UsersDelete, kp: Services) -> Response:
    """The last owner cannot be removed (409). The user's console sessions end at once."""
    kp.users.delete(principal, user_id)
    return Response(status_code=204)
