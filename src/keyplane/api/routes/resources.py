"""/v1/resources: the permission catalogue."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import ResourcesDelete, ResourcesRead, ResourcesWrite, Services
from keyplane.api.routes._docs import problems
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.api.schemas.resources import ResourceCreate, ResourceOut, ResourceUpdate
from keyplane.services.resources import ResourceChanges

router = APIRouter(prefix="/v1/resources", tags=["resources"])


@router.get("", responses=problems(), summary="List the catalogue (built-in and custom resources)")
def list_resources(principal: ResourcesRead, kp: Services) -> Paged[ResourceOut]:
    return Paged[ResourceOut](
        data=[ResourceOut.of(r) for r in kp.resources.catalogue(principal)], next_cursor=None
    )


@router.post("", status_code=201, responses=problems(409, 422), summary="Add a custom resource")
def create_resource(body: ResourceCreate, principal: ResourcesWrite, kp: Services) -> ResourceOut:
    resource = kp.resources.create(principal, body.name, body.title, body.description, body.actions)
    return ResourceOut.of(resource)


@router.get("/{name}", responses=problems(404), summary="Read a resource")
def get_resource(name: str, principal: ResourcesRead, kp: Services) -> ResourceOut:
    return ResourceOut.of(kp.resources.get(principal, name))


@router.patch("/{name}", responses=problems(404, 409, 422), summary="Change a custom resource")
def update_resource(
    name: str, body: ResourceUpdate, principal: ResourcesWrite, kp: Services
) -> ResourceOut:
    """Built-ins cannot change (409); an action still granted cannot be removed (409)."""
    return ResourceOut.of(kp.resources.update(principal, name, changes_from(body, ResourceChanges)))


@router.delete(
    "/{name}", status_code=204, responses=problems(404, 409), summary="Delete a custom resource"
)
def delete_resource(name: str, principal: ResourcesDelete, kp: Services) -> Response:
    """Refused (409, naming who) while any key or app grants it; built-ins cannot be deleted."""
    kp.resources.delete(principal, name)
    return Response(status_code=204)
