"""/v1/presets: named scope sets to start keys and apps from (templates, copied when used)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from keyplane.api.deps import ResourcesDelete, ResourcesRead, ResourcesWrite, Services
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.api.schemas.presets import PresetCreate, PresetOut, PresetUpdate
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.services.presets import PresetChanges

router = APIRouter(prefix="/v1/presets", tags=["presets"])


@router.post("", status_code=201, responses=problems(409, 422), summary="Create a preset")
def create_preset(body: PresetCreate, principal: ResourcesWrite, kp: Services) -> PresetOut:
    """You must hold the scopes you save (403 otherwise): a preset is advice others act on."""
    return PresetOut.of(
        kp.presets.create(principal, body.name, body.description, tuple(body.scopes))
    )


@router.get("", responses=problems(422), summary="List presets")
def list_presets(
    principal: ResourcesRead, kp: Services, limit: Limit = PAGE_DEFAULT, cursor: Cursor = None
) -> Paged[PresetOut]:
    page = kp.presets.page(principal, limit=limit, cursor=cursor)
    return Paged[PresetOut](
        data=[PresetOut.of(p) for p in page.items], next_cursor=page.next_cursor
    )


@router.get("/{preset_id}", responses=problems(404), summary="Read a preset")
def get_preset(preset_id: str, principal: ResourcesRead, kp: Services) -> PresetOut:
    return PresetOut.of(kp.presets.get(principal, preset_id))


@router.patch("/{preset_id}", responses=problems(404, 409, 422), summary="Change a preset")
def update_preset(
    preset_id: str, body: PresetUpdate, principal: ResourcesWrite, kp: Services
) -> PresetOut:
    """Keys and apps made from the preset keep the scopes they were given."""
    return PresetOut.of(kp.presets.update(principal, preset_id, changes_from(body, PresetChanges)))


@router.delete("/{preset_id}", status_code=204, responses=problems(404), summary="Delete a preset")
def delete_preset(preset_id: str, principal: ResourcesDelete, kp: Services) -> Response:
    """Keys and apps made from the preset keep their scopes."""
    kp.presets.delete(principal, preset_id)
    return Response(status_code=204)
