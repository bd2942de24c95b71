"""``kp.org``: the caller's organization and its key policies (``/v1/org``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from keyplane_client._models import Organization, RateLimitParam, RouteParam
from keyplane_client._types import NOT_GIVEN, AsyncAPI, Call, NotGiven, SyncAPI, body

_GET = Call("GET", "/v1/org")


def _update(**fields: Any) -> Call:
    return Call("PATCH", "/v1/org", json=body(**fields))


class Org:
    def __init__(self, client: SyncAPI) -> None:
        self._client = client

    def get(self) -> Organization:
        return self._client._request(Organization, _GET)

    def update(
        self,
        *,
        name: str | NotGiven = NOT_GIVEN,
        require_explicit_scopes: bool | NotGiven = NOT_GIVEN,
        max_key_lifetime_days: int | NotGiven | None = NOT_GIVEN,
        expired_key_retention_days: int | NotGiven = NOT_GIVEN,
        expiry_warning_days: Sequence[int] | NotGiven = NOT_GIVEN,
        rotation_period_days: int | NotGiven | None = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        route_table: Sequence[RouteParam] | NotGiven = NOT_GIVEN,
        leaked_key_action: Literal["disable", "delete"] | NotGiven = NOT_GIVEN,
    ) -> Organization:
        """Changes what is given (None removes a maximum lifetime or rotation period).
        ``route_table`` maps requests to scopes for ``/v1/auth/nginx``
        (``[{"method": "GET", "path": "/models/*", "scopes": ["models:read"]}]``);
        ``leaked_key_action`` is what a key reported leaked becomes."""
        call = _update(
            name=name,
            require_explicit_scopes=require_explicit_scopes,
            max_key_lifetime_days=max_key_lifetime_days,
            expired_key_retention_days=expired_key_retention_days,
            expiry_warning_days=expiry_warning_days,
            rotation_period_days=rotation_period_days,
            ratelimits=ratelimits,
            route_table=route_table,
            leaked_key_action=leaked_key_action,
        )
        return self._client._request(Organization, call)


class AsyncOrg:
    def __init__(self, client: AsyncAPI) -> None:
        self._client = client

    async def get(self) -> Organization:
        return await self._client._request(Organization, _GET)

    async def update(
        self,
        *,
        name: str | NotGiven = NOT_GIVEN,
        require_explicit_scopes: bool | NotGiven = NOT_GIVEN,
        max_key_lifetime_days: int | NotGiven | None = NOT_GIVEN,
        expired_key_retention_days: int | NotGiven = NOT_GIVEN,
        expiry_warning_days: Sequence[int] | NotGiven = NOT_GIVEN,
        rotation_period_days: int | NotGiven | None = NOT_GIVEN,
        ratelimits: Sequence[RateLimitParam] | NotGiven = NOT_GIVEN,
        route_table: Sequence[RouteParam] | NotGiven = NOT_GIVEN,
        leaked_key_action: Literal["disable", "delete"] | NotGiven = NOT_GIVEN,
    ) -> Organization:
        call = _update(
            name=name,
            require_explicit_scopes=require_explicit_scopes,
            max_key_lifetime_days=max_key_lifetime_days,
            expired_key_retention_days=expired_key_retention_days,
            expiry_warning_days=expiry_warning_days,
            rotation_period_days=rotation_period_days,
            ratelimits=ratelimits,
            route_table=route_table,
            leaked_key_action=leaked_key_action,
        )
        return await self._client._request(Organization, call)
