"""/v1/profiles: named settings a key carries to the services that verify it."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import ProfilesDelete, ProfilesRead, ProfilesWrite, Services
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.api.schemas.profiles import ProfileCreate, ProfileOut, ProfileUpdate
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.services.profiles import ProfileChanges

router = APIRouter(prefix="/v1/profiles", tags=["profiles"])


@router.post("", status_code=201, responses=problems(409, 422), summary="Create a profile")
def create_profile(body: ProfileCreate, principal: ProfilesWrite, kp: Services) -> ProfileOut:
    return ProfileOut.of(kp.profiles.create(principal, body.name, body.description, body.settings))


@router.get("", responses=problems(422), summary="List profiles")
def list_profiles(
    principal: ProfilesRead, kp: Services, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Paged[ProfileOut]:
    page = kp.profiles.page(principal, limit=limit, cursor=cursor)
    return Paged[ProfileOut](
        data=[ProfileOut.of(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.get("/{profile_id}", responses=problems(404), summary="Read a profile")
def get_profile(profile_id: str, principal: ProfilesRead, kp: Services) -> ProfileOut:
    return ProfileOut.of(kp.profiles.get(principal, profile_id))


@router.patch("/{profile_id}", responses=problems(404, 409, 422), summary="Change a profile")
def update_profile(
    profile_id: str, body: ProfileUpdate, principal: ProfilesWrite, kp: Services
) -> ProfileOut:
    """Keys carrying the profile answer verifications with the new settings at once."""
    return ProfileOut.of(
        kp.profiles.update(principal, profile_id, changes_from(body, ProfileChanges))
    )


@router.delete(
    "/{profile_id}", status_code=204, responses=problems(404, 409), summary="Delete a profile"
)
def delete_profile(profile_id: str, principal: ProfilesDelete, kp: Services) -> Response:
    """Refused (409) while any key carries the profile."""
    kp.profiles.delete(principal, profile_id)
    return Response(status_code=204)
