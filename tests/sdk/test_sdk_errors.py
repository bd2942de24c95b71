"""keyplane's problem documents as typed exceptions, from a real server over loopback."""

from __future__ import annotations

import pytest

from keyplane_client import (
    APIConnectionError,
    APIError,
    AsyncKeyplane,
    AuthenticationError,
    ConflictError,
    FieldError,
    Keyplane,
    KeyplaneError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ValidationError,
)

from conftest import Org, free_port
from support.aio import run

UNKNOWN_KEY = "kp_live_" + "A" * 38


def test_an_unknown_api_key_is_AuthenticationError(kp: Keyplane) -> None:
    with Keyplane(kp.base_url, UNKNOWN_KEY) as stranger, pytest.raises(AuthenticationError) as err:
        list(stranger.keys.list())
    error = err.value
    assert error.status == 401
    assert error.type == "urn:keyplane:problem:unauthenticated"
    assert error.title == "Authentication required"
    assert error.headers["www-authenticate"].startswith("Bearer")
    assert isinstance(error, APIError)
    assert isinstance(error, KeyplaneError)
    assert UNKNOWN_KEY not in str(error)


def test_a_missing_scope_is_PermissionDeniedError_naming_it(kp: Keyplane) -> None:
    reader = kp.keys.create(name="reader", scopes=["apps:read"])
    with Keyplane(kp.base_url, reader.key) as as_reader:
        assert list(as_reader.apps.list()) == []
        with pytest.raises(PermissionDeniedError) as err:
            as_reader.keys.create(name="more")
    assert err.value.status == 403
    assert err.value.missing_scope == "api_keys:write"
    assert "api_keys:write" in err.value.detail


def test_granting_more_than_held_is_a_403_with_field_errors(kp: Keyplane) -> None:
    issuer = kp.keys.create(name="issuer", scopes=["api_keys:write", "apps:read"])
    with (
        Keyplane(kp.base_url, issuer.key) as as_issuer,
        pytest.raises(PermissionDeniedError) as err,
    ):
        as_issuer.keys.create(name="wider", scopes=["apps:read", "apps:write"])
    assert err.value.errors == [FieldError("scopes", "you do not hold 'apps:write'")]
    assert err.value.missing_scope is None


def test_invalid_input_is_ValidationError_naming_each_field(kp: Keyplane) -> None:
    with pytest.raises(ValidationError) as err:
        kp.keys.create(name="", expires_in_days=0)
    error = err.value
    assert error.status == 422
    assert {e.field for e in error.errors} == {"name", "expires_in_days"}
    assert all(isinstance(e, FieldError) and e.message for e in error.errors)
    assert "expires_in_days" in str(error)
    with pytest.raises(ValidationError) as err:
        kp.keys.create(name="k", scopes=["apps:read", "nope"])
    assert [e.field for e in err.value.errors] == ["scopes[1]"]


def test_an_immutable_field_is_refused_by_the_server_not_the_client(kp: Keyplane) -> None:
    created = kp.keys.create(name="k", scopes=["apps:read"])
    with pytest.raises(ValidationError) as err:
        kp.keys.update(created.id, status="paused")  # type: ignore[arg-type]
    assert [e.field for e in err.value.errors] == ["status"]


def test_a_missing_object_is_NotFoundError(kp: Keyplane) -> None:
    with pytest.raises(NotFoundError) as err:
        kp.apps.get("app_00000000000000000000000000")
    assert err.value.status == 404
    with pytest.raises(NotFoundError):
        kp.keys.delete("../apps")  # an id never reaches another route


def test_rotating_twice_is_ConflictError(kp: Keyplane) -> None:
    created = kp.keys.create(name="once", scopes=["apps:read"])
    successor = kp.keys.rotate(created.id)
    with pytest.raises(ConflictError) as err:
        kp.keys.rotate(created.id)
    assert err.value.status == 409
    assert successor.id in err.value.detail


def test_a_limited_calling_key_is_RateLimitedError_with_retry_after(kp: Keyplane) -> None:
    """A Retry-After over the client's cap (a minute) is raised at once, not waited for."""
    limited = kp.keys.create(
        name="limited",
        scopes=["apps:read"],
        ratelimits=[{"name": "hourly", "limit": 1, "period_seconds": 3600}],
    )
    with Keyplane(kp.base_url, limited.key) as as_limited:
        list(as_limited.apps.list())
        with pytest.raises(RateLimitedError) as err:
            list(as_limited.apps.list())
    error = err.value
    assert error.status == 429
    assert error.retry_after is not None
    assert 60 < error.retry_after <= 3600
    assert error.headers["ratelimit-policy"] == '"hourly";q=1;w=3600'


def test_a_calling_key_out_of_quota_is_raised_without_retrying(kp: Keyplane) -> None:
    spent = kp.keys.create(name="spent", scopes=["apps:read"], quota={"remaining": 1})
    with Keyplane(kp.base_url, spent.key) as as_spent:
        list(as_spent.apps.list())
        with pytest.raises(RateLimitedError) as err:
            list(as_spent.apps.list())
    assert err.value.code == "USAGE_EXCEEDED"
    assert err.value.retry_after is None


def test_no_server_is_APIConnectionError() -> None:
    with (
        Keyplane(f"http://127.0.0.1:{free_port()}", UNKNOWN_KEY, max_retries=0) as nowhere,
        pytest.raises(APIConnectionError) as err,
    ):
        nowhere.keys.get("key_1")
    assert "ConnectError" in str(err.value)
    assert err.value.request is not None
    assert UNKNOWN_KEY not in str(err.value)


def test_the_async_client_raises_the_same_errors(sdk_org: Org) -> None:
    base_url, owner = sdk_org.server.base_url, sdk_org.api.key

    async def scenario() -> list[type[KeyplaneError]]:
        raised: list[type[KeyplaneError]] = []
        async with AsyncKeyplane(base_url, owner) as kp:
            for attempt in (
                lambda: kp.keys.get("key_00000000000000000000000000"),
                lambda: kp.apps.create(name="x", scopes=["nope"]),
            ):
                try:
                    await attempt()
                except KeyplaneError as error:
                    raised.append(type(error))
        async with AsyncKeyplane(base_url, UNKNOWN_KEY) as stranger:
            try:
                await stranger.org.get()
            except KeyplaneError as error:
                raised.append(type(error))
        async with AsyncKeyplane(f"http://127.0.0.1:{free_port()}", owner, max_retries=0) as no:
            try:
                await no.org.get()
            except KeyplaneError as error:
                raised.append(type(error))
        return raised

    assert run(scenario) == [
        NotFoundError,
        ValidationError,
        AuthenticationError,
        APIConnectionError,
    ]
