"""``kp.keys``: issue, list, read, change, rotate, delete and verify keys (``/v1/keys``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from keyplane_client._models import CreatedKey, Key, QuotaParam, RateLimitParam, Verdict
from keyplane_client._pagination import AsyncPaginator, Page, Paginator
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body, path

Status = Literal["active", "inactive"]


def _create(**fields: Any) -> Call:
    return Call("POST", "/v1/keys", json=body(**fields))


def _page(
    cursor: str | None,
    status: str | None,
    app_id: str | None,
    limit: int | None,
    parent_id: str | None = None,
) -> Call:
    params = {"cursor": cursor, "status": status, "app_id": app_id, "limit": limit}
    return Call("GET", "/v1/keys", params=params | {"parent_id": parent_id})


def _create_child(key_id: str, **fields: Any) -> Call:
    return Call("POST", path("/v1/keys/{}/children", key_id), json=body(**fields))


def _children(key_id: str, cursor: str | None, limit: int | None) -> Call:
    url = path("/v1/keys/{}/children", key_id)
    return Call("GET", url, params={"cursor": cursor, "limit": limit})


def _update(key_id: str, **fields: Any) -> Call:
    return Call("PATCH", path("/v1/keys/{}", key_id), json=body(**fields))


def _rotate(key_id: str, grace_period_seconds: int | NotGiven) -> Call:
    return Call(
        "POST",
        path("/v1/keys/{}/rotate", key_id),
        json=body(grace_period_seconds=grace_period_seconds),
    )


def _verify(
    key: str, scopes: Sequence[str], ip: str | NotGiven | None, cost: int | NotGiven
) -> Call:
    return Call(
        "POST",
        "/v1/keys/verify",
        json=body(key=key, scopes=list(scopes), ip=ip, cost=cost),
        # A check that spends nothing (cost 0) may be sent twice; one that spends quota
        # may not, once it could have reached the server (see _retry).
        idempotent=cost == 0,
    )


class Keys:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def create(
        self,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        app_id: str | NotGiven | None = NOT_GIVEN,
        expires_at: datetime | str | NotGiven | None = NOT_GIVEN,
        expires_in_days: int | NotGiven = NOT_GIVEN,
        profile_id: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        environment: Literal["live", "test"] | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        quota: QuotaParam | NotGiven | None = NOT_GIVEN,
        ip_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
        preset: str | NotGiven = NOT_GIVEN,
    ) -> CreatedKey:
        """Issues a key. The answer's ``.key`` is the full key, shown this once: store it.
        Without ``scopes`` (and outside an app) the key has full access, unless the
        organization requires explicit scopes."""
        return self._client._request(
            CreatedKey,
            _create(
                name=name,
                scopes=scopes,
                app_id=app_id,
                expires_at=expires_at,
                expires_in_days=expires_in_days,
                profile_id=profile_id,
                metadata=metadata,
                description=description,
                environment=environment,
                ratelimits=ratelimits,
                quota=quota,
                ip_allowlist=ip_allowlist,
                preset=preset,
            ),
        )

    def list(
        self,
        *,
        status: Literal["active", "inactive", "expired"] | None = None,
        app_id: str | None = None,
        limit: int | None = None,
        parent_id: str | None = None,
    ) -> Paginator[Key]:
        """Every key (``limit`` is the page size), following ``next_cursor`` page by page;
        ``parent_id``: only the children of that key."""
        return Paginator(
            lambda cursor: self._client._request(
                Page[Key], _page(cursor, status, app_id, limit, parent_id)
            )
        )

    def create_child(
        self,
        key_id: str,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        expires_at: datetime | str | NotGiven = NOT_GIVEN,
        expires_in: int | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        quota: QuotaParam | NotGiven = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> CreatedKey:
        """A delegated key for an agent or a job, made by the key ``key_id`` itself: this
        client must hold that key. Never more than its parent (scopes a subset, expiry no
        later, by default an hour; limits no looser); it stops with its parent."""
        call = _create_child(
            key_id,
            name=name,
            scopes=scopes,
            expires_at=expires_at,
            expires_in=expires_in,
            ratelimits=ratelimits,
            quota=quota,
            metadata=metadata,
            description=description,
        )
        return self._client._request(CreatedKey, call)

    def children(self, key_id: str, *, limit: int | None = None) -> Paginator[Key]:
        """The keys ``key_id`` created, newest first."""
        return Paginator(
            lambda cursor: self._client._request(Page[Key], _children(key_id, cursor, limit))
        )

    def get(self, key_id: str) -> Key:
        """The key, with ``current_ratelimits`` (every limit that applies, and what remains)."""
        return self._client._request(Key, Call("GET", path("/v1/keys/{}", key_id)))

    def update(
        self,
        key_id: str,
        *,
        status: Status | NotGiven = NOT_GIVEN,
        profile_id: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        expires_at: datetime | str | NotGiven | None = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        quota: QuotaParam | NotGiven | None = NOT_GIVEN,
        ip_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Key:
        """Changes what is given (None removes a profile, an expiry or a quota). Name,
        scopes, app and secret cannot change: create a new key instead."""
        return self._client._request(
            Key,
            _update(
                key_id,
                status=status,
                profile_id=profile_id,
                description=description,
                metadata=metadata,
                expires_at=expires_at,
                ratelimits=ratelimits,
                quota=quota,
                ip_allowlist=ip_allowlist,
            ),
        )

    def disable(self, key_id: str) -> Key:
        """Stops the key verifying (``DISABLED``) until it is enabled again."""
        return self.update(key_id, status="inactive")

    def enable(self, key_id: str) -> Key:
        return self.update(key_id, status="active")

    def delete(self, key_id: str) -> None:
        """Deletes the key for good: every service using it stops working at once."""
        self._client._request_empty(Call("DELETE", path("/v1/keys/{}", key_id)))

    def rotate(
        self, key_id: str, *, grace_period_seconds: int | NotGiven = NOT_GIVEN
    ) -> CreatedKey:
        """Issues the key's successor (its ``.key`` shown this once); the old key keeps
        verifying for the grace period (the server's default: a day)."""
        return self._client._request(CreatedKey, _rotate(key_id, grace_period_seconds))

    def verify(
        self,
        key: str,
        *,
        scopes: Sequence[str] = (),
        ip: str | NotGiven | None = NOT_GIVEN,
        cost: int | NotGiven = NOT_GIVEN,
    ) -> Verdict:
        """May ``key`` (a key a client presented to your service) do all of ``scopes``?
        A refusal is a verdict (``valid`` False and its ``code``), not an exception; the
        calling key needs ``keys:verify``."""
        return self._client._request(Verdict, _verify(key, scopes, ip, cost))


class AsyncKeys:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def create(
        self,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        app_id: str | NotGiven | None = NOT_GIVEN,
        expires_at: datetime | str | NotGiven | None = NOT_GIVEN,
        expires_in_days: int | NotGiven = NOT_GIVEN,
        profile_id: str | NotGiven | None = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        environment: Literal["live", "test"] | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        quota: QuotaParam | NotGiven | None = NOT_GIVEN,
        ip_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
        preset: str | NotGiven = NOT_GIVEN,
    ) -> CreatedKey:
        """See :meth:`Keys.create`."""
        return await self._client._request(
            CreatedKey,
            _create(
                name=name,
                scopes=scopes,
                app_id=app_id,
                expires_at=expires_at,
                expires_in_days=expires_in_days,
                profile_id=profile_id,
                metadata=metadata,
                description=description,
                environment=environment,
                ratelimits=ratelimits,
                quota=quota,
                ip_allowlist=ip_allowlist,
                preset=preset,
            ),
        )

    def list(
        self,
        *,
        status: Literal["active", "inactive", "expired"] | None = None,
        app_id: str | None = None,
        limit: int | None = None,
        parent_id: str | None = None,
    ) -> AsyncPaginator[Key]:
        """``async for key in kp.keys.list():`` every key, page by page."""

        async def fetch(cursor: str | None) -> Page[Key]:
            call = _page(cursor, status, app_id, limit, parent_id)
            return await self._client._request(Page[Key], call)

        return AsyncPaginator(fetch)

    async def create_child(
        self,
        key_id: str,
        *,
        name: str,
        scopes: Sequence[str] | NotGiven = NOT_GIVEN,
        expires_at: datetime | str | NotGiven = NOT_GIVEN,
        expires_in: int | NotGiven = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        quota: QuotaParam | NotGiven = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
    ) -> CreatedKey:
        call = _create_child(
            key_id,
            name=name,
            scopes=scopes,
            expires_at=expires_at,
            expires_in=expires_in,
            ratelimits=ratelimits,
            quota=quota,
            metadata=metadata,
            description=description,
        )
        return await self._client._request(CreatedKey, call)

    def children(self, key_id: str, *, limit: int | None = None) -> AsyncPaginator[Key]:
        async def fetch(cursor: str | None) -> Page[Key]:
            return await self._client._request(Page[Key], _children(key_id, cursor, limit))

        return AsyncPaginator(fetch)

    async def get(self, key_id: str) -> Key:
        return await self._client._request(Key, Call("GET", path("/v1/keys/{}", key_id)))

    async def update(
        self,
        key_id: str,
        *,
        status: Status | NotGiven = NOT_GIVEN,
        profile_id: str | NotGiven | None = NOT_GIVEN,
        description: str | NotGiven = NOT_GIVEN,
        metadata: Mapping[str, Any] | NotGiven = NOT_GIVEN,
        expires_at: datetime | str | NotGiven | None = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        quota: QuotaParam | NotGiven | None = NOT_GIVEN,
        ip_allowlist: Sequence[str] | NotGiven = NOT_GIVEN,
    ) -> Key:
        """See :meth:`Keys.update`."""
        return await self._client._request(
            Key,
            _update(
                key_id,
                status=status,
                profile_id=profile_id,
                description=description,
                metadata=metadata,
                expires_at=expires_at,
                ratelimits=ratelimits,
                quota=quota,
                ip_allowlist=ip_allowlist,
            ),
        )

    async def disable(self, key_id: str) -> Key:
        return await self.update(key_id, status="inactive")

    async def enable(self, key_id: str) -> Key:
        return await self.update(key_id, status="active")

    async def delete(self, key_id: str) -> None:
        await self._client._request_empty(Call("DELETE", path("/v1/keys/{}", key_id)))

    async def rotate(
        self, key_id: str, *, grace_period_seconds: int | NotGiven = NOT_GIVEN
    ) -> CreatedKey:
        return await self._client._request(CreatedKey, _rotate(key_id, grace_period_seconds))

    async def verify(
        self,
        key: str,
        *,
        scopes: Sequence[str] = (),
        ip: str | NotGiven | None = NOT_GIVEN,
        cost: int | NotGiven = NOT_GIVEN,
    ) -> Verdict:
        """See :meth:`Keys.verify`."""
        return await self._client._request(Verdict, _verify(key, scopes, ip, cost))
