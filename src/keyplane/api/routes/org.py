"""/v1/org: the caller's organization and its key policies."""

from __future__ import annotations

from fastapi import APIRouter

from keyplane.api.deps import OrgRead, OrgWrite, Services
from keyplane.api.routes._docs import problems
from keyplane.api.schemas.common import changes_from
from keyplane.api.schemas.org import OrgOut, OrgUpdate
from keyplane.services.orgs import OrgChanges

router = APIRouter(prefix="/v1/org", tags=["organization"])


@router.get("", responses=problems(), summary="Read the organization")
def get_org(principal: OrgRead, kp: Services) -> OrgOut:
    return OrgOut.of(kp.orgs.get(principal))


@router.patch(
    "", responses=problems(409, 422), summary="Change the organization's name or key policies"
)
def update_org(body: OrgUpdate, principal: OrgWrite, kp: Services) -> OrgOut:
    nullable = ("max_key_lifetime_days", "rotation_period_days")
    return OrgOut.of(kp.orgs.update(principal, changes_from(body, OrgChanges, nullable=nullable)))
