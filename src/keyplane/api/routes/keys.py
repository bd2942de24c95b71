"""/v1/keys: issue, list, read, change and delete keys."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Response

from keyplane.api.deps import Authenticated, KeysDelete, KeysRead, KeysWrite, Services, no_store
from keyplane.api.routes._docs import Cursor, Limit, problems
from keyplane.api.schemas.common import Paged, changes_from
from keyplane.api.schemas.keys import (
    KeyChildCreate,
    KeyCreate,
    KeyCreated,
    KeyOut,
    KeyRotate,
    KeyUpdate,
)
from keyplane.domain.errors import InvalidInput
from keyplane.domain.limits import PAGE_DEFAULT
from keyplane.services.children import NewChild
from keyplane.services.keys import KeyChanges, NewKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=201, responses=problems(409, 422), summary="Create a key")
def create_key(
    body: KeyCreate, principal: KeysWrite, kp: Services, response: Response
) -> KeyCreated:
    """Creates a key. The full key is in this response only: store it now."""
    no_store(response)
    issued = kp.keys.create(
        principal,
        NewKey(
            name=body.name,
            description=body.description,
            scopes=tuple(body.scopes),
            app_id=body.app_id,
            expires_at=body.expires_at,
            expires_in_days=body.expires_in_days,
            profile_id=body.profile_id,
            metadata=body.metadata,
            environment=body.environment,
            ratelimits=[r.model_dump() for r in body.ratelimits],
            quota=body.quota.model_dump(exclude_unset=True) if body.quota else None,
            ip_allowlist=body.ip_allowlist,
            preset=body.preset,
        ),
    )
    return KeyCreated.of_issued(issued)


@router.get("", responses=problems(422), summary="List keys")
def list_keys(
    principal: KeysRead,
    kp: Services,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
    status: Literal["active", "inactive", "expired"] | None = None,
    app_id: str | None = None,
    parent_id: str | None = None,
) -> Paged[KeyOut]:
    page = kp.keys.page(
        principal, limit=limit, cursor=cursor, status=status, app_id=app_id, parent_id=parent_id
    )
    return Paged[KeyOut](data=[KeyOut.of(v) for v in page.items], next_cursor=page.next_cursor)


@router.get("/{key_id}", responses=problems(404), summary="Read a key")
def get_key(key_id: str, principal: KeysRead, kp: Services) -> KeyOut:
    return KeyOut.of(kp.keys.get(principal, key_id))


@router.patch("/{key_id}", responses=problems(404, 409, 422), summary="Change a key")
def update_key(key_id: str, body: KeyUpdate, principal: KeysWrite, kp: Services) -> KeyOut:
    """Changes status, profile, description, metadata, expiry, rate limits, quota or IP
    allowlist (limits are policy, not identity). Name, scopes, app and secret are
    immutable: create a new key instead."""
    changes = changes_from(body, KeyChanges, nullable=("profile_id", "expires_at", "quota"))
    return KeyOut.of(kp.keys.update(principal, key_id, changes))


@router.post(
    "/{key_id}/rotate",
    status_code=201,
    responses=problems(404, 409, 422),
    summary="Rotate a key",
)
def rotate_key(
    key_id: str,
    principal: KeysWrite,
    kp: Services,
    response: Response,
    body: KeyRotate | None = None,
) -> KeyCreated:
    """Issues the key's successor (same app, scopes, profile, metadata, environment and
    lifetime) and keeps the old key verifying for the grace period. The full new key is in
    this response only: store it now. A key is rotated once; again is a 409 naming its
    successor."""
    no_store(response)
    rotated = kp.rotation.rotate(principal, key_id, (body or KeyRotate()).grace_period_seconds)
    return KeyCreated.of_issued(rotated.issued)


@router.delete("/{key_id}", status_code=204, responses=problems(404), summary="Delete a key")
def delete_key(key_id: str, principal: KeysDelete, kp: Services) -> Response:
    """Deletes a key for good: every service using it stops working at once."""
    kp.keys.delete(principal, key_id)
    return Response(status_code=204)


@router.post(
    "/{key_id}/children",
    status_code=201,
    responses=problems(403, 404, 409, 422),
    summary="Create a delegated key",
)
def create_child_key(
    key_id: str, body: KeyChildCreate, principal: Authenticated, kp: Services, response: Response
) -> KeyCreated:
    """Called with the key ``key_id`` itself, which needs no scope for it: holding the key
    is the authority (any other caller is a 403). Creates a child key with a subset of the
    parent's effective scopes, an expiry no later than the parent's (default one hour), and
    rate limits and quota no looser than the parent's. Disabling, deleting, rotating out or
    expiring the parent stops every descendant at once. Children nest up to
    KEYPLANE_MAX_KEY_DEPTH (default 2). The full key is in this response only."""
    no_store(response)
    fields = body.model_fields_set
    for name in ("scopes", "ratelimits"):  # left out: the parent's; null says nothing
        if name in fields and getattr(body, name) is None:
            raise InvalidInput.field(name, "must not be null")
    issued = kp.children.create(
        principal,
        key_id,
        NewChild(
            name=body.name,
            description=body.description,
            scopes=tuple(body.scopes) if body.scopes is not None else None,
            expires_at=body.expires_at,
            expires_in=body.expires_in,
            metadata=body.metadata,
            ratelimits=(
                [r.model_dump() for r in body.ratelimits] if body.ratelimits is not None else None
            ),
            quota=body.quota.model_dump(exclude_unset=True) if body.quota else None,
            quota_given="quota" in fields,
        ),
    )
    return KeyCreated.of_issued(issued)


@router.get("/{key_id}/children", responses=problems(404, 422), summary="List a key's children")
def list_child_keys(
    key_id: str,
    principal: KeysRead,
    kp: Services,
    limit: Limit = PAGE_DEFAULT,
    cursor: Cursor = None,
) -> Paged[KeyOut]:
    """The keys ``key_id`` created with POST /v1/keys/{key_id}/children, newest first."""
    page = kp.children.page(principal, key_id, limit=limit, cursor=cursor)
    return Paged[KeyOut](data=[KeyOut.of(v) for v in page.items], next_cursor=page.next_cursor)
