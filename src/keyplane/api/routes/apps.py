"""/v1/apps: groups of keys sharing one scope set."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import AppsDelete, AppsRead, AppsWrite, Services
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.apps import AppCreate, AppOut, AppUpdate
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.services.apps import AppChanges

router = APIRouter(prefix="/v1/apps", tags=["apps"])


@router.post("", status_code=201, responses=problems(409, 422), summary="Create an app")
def create_app(body: AppCreate, principal: AppsWrite, kp: Services) -> AppOut:
    app = kp.apps.create(
        principal,
        body.name,
        body.description,
        tuple(body.scopes),
        [r.model_dump() for r in body.ratelimits],
        preset=body.preset,
    )
    return AppOut.of(app)


@router.get("", responses=problems(422), summary="List apps")
def list_apps(
    principal: AppsRead, kp: Services, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Paged[AppOut]:
    page = kp.apps.page(principal, limit=limit, cursor=cursor)
    return Paged[AppOut](data=[AppOut.of(a) for a in page.items], next_cursor=page.next_cursor)


@router.get("/{app_id}", responses=problems(404), summary="Read an app")
def get_app(app_id: str, principal: AppsRead, kp: Services) -> AppOut:
    return AppOut.of(kp.apps.get(principal, app_id))


@router.patch(
    "/{app_id}", responses=problems(404, 409, 422), summary="Rename an app or change its scopes"
)
def update_app(app_id: str, body: AppUpdate, principal: AppsWrite, kp: Services) -> AppOut:
    """A scope change governs every key of the app from its next verification."""
    return AppOut.of(kp.apps.update(principal, app_id, changes_from(body, AppChanges)))


@router.delete(
    "/{app_id}", status_code=204, responses=problems(404), summary="Delete an app and its keys"
)
def delete_app(app_id: str, principal: AppsDelete, kp: Services) -> Response:
    kp.apps.delete(principal, app_id)
    return Response(status_code=204)
