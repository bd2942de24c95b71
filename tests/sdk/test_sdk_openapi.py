"""The SDK covers keyplane's API as its OpenAPI document describes it: every operation has a
method (or a reason it has none), every field of a request body and every query parameter
is a keyword of that method, and the asyncio client mirrors the blocking one."""

from __future__ import annotations

import inspect
from typing import Any

import httpx
import pytest

from keyplane_client import AsyncKeyplane, Keyplane

from conftest import Server
from support.aio import run

# (method, path) -> the SDK method, as "namespace.method".
OPERATIONS = {
    ("POST", "/v1/keys"): "keys.create",
    ("GET", "/v1/keys"): "keys.list",
    ("GET", "/v1/keys/{key_id}"): "keys.get",
    ("PATCH", "/v1/keys/{key_id}"): "keys.update",
    ("DELETE", "/v1/keys/{key_id}"): "keys.delete",
    ("POST", "/v1/keys/{key_id}/rotate"): "keys.rotate",
    ("POST", "/v1/keys/verify"): "keys.verify",
    ("POST", "/v1/apps"): "apps.create",
    ("GET", "/v1/apps"): "apps.list",
    ("GET", "/v1/apps/{app_id}"): "apps.get",
    ("PATCH", "/v1/apps/{app_id}"): "apps.update",
    ("DELETE", "/v1/apps/{app_id}"): "apps.delete",
    ("POST", "/v1/resources"): "resources.create",
    ("GET", "/v1/resources"): "resources.list",
    ("GET", "/v1/resources/{name}"): "resources.get",
    ("PATCH", "/v1/resources/{name}"): "resources.update",
    ("DELETE", "/v1/resources/{name}"): "resources.delete",
    ("POST", "/v1/keys/{key_id}/children"): "keys.create_child",
    ("GET", "/v1/keys/{key_id}/children"): "keys.children",
    ("POST", "/v1/profiles"): "profiles.create",
    ("GET", "/v1/profiles"): "profiles.list",
    ("GET", "/v1/profiles/{profile_id}"): "profiles.get",
    ("PATCH", "/v1/profiles/{profile_id}"): "profiles.update",
    ("DELETE", "/v1/profiles/{profile_id}"): "profiles.delete",
    ("POST", "/v1/presets"): "presets.create",
    ("GET", "/v1/presets"): "presets.list",
    ("GET", "/v1/presets/{preset_id}"): "presets.get",
    ("PATCH", "/v1/presets/{preset_id}"): "presets.update",
    ("DELETE", "/v1/presets/{preset_id}"): "presets.delete",
    ("POST", "/v1/users"): "users.create",
    ("GET", "/v1/users"): "users.list",
    ("GET", "/v1/users/{user_id}"): "users.get",
    ("PATCH", "/v1/users/{user_id}"): "users.update",
    ("DELETE", "/v1/users/{user_id}"): "users.delete",
    ("POST", "/v1/webhooks"): "webhooks.create",
    ("GET", "/v1/webhooks"): "webhooks.list",
    ("GET", "/v1/webhooks/{webhook_id}"): "webhooks.get",
    ("PATCH", "/v1/webhooks/{webhook_id}"): "webhooks.update",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "webhooks.delete",
    ("POST", "/v1/webhooks/{webhook_id}/roll-secret"): "webhooks.roll_secret",
    ("POST", "/v1/webhooks/{webhook_id}/test"): "webhooks.test",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "webhooks.deliveries",
    (
        "POST",
        "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
    ): "webhooks.redeliver",
    ("GET", "/v1/audit-events"): "audit_events.list",
    ("GET", "/v1/audit-events/export"): "audit_events.export",
    ("GET", "/v1/analytics/usage"): "usage.series",
    ("GET", "/v1/analytics/top-keys"): "usage.top_keys",
    ("GET", "/v1/org"): "org.get",
    ("PATCH", "/v1/org"): "org.update",
}

# Operations the SDK leaves out, and why. A new operation of the API goes in OPERATIONS
# with its method, or here with its reason.
LEFT_OUT = {
    ("GET", "/"): "the index, for people and link-following clients",
    ("GET", "/healthz"): "for load balancers",
    ("POST", "/oauth/token"): "for OAuth client libraries (Authlib's is tested)",
    ("GET", "/.well-known/jwks.json"): "for JOSE libraries (PyJWT's PyJWKClient is tested)",
    ("GET", "/v1/auth/nginx"): "for nginx's auth_request",
    ("POST", "/v1/keys/leaked"): "public, for whoever finds a key: no client key to hold",
    ("POST", "/v1/github/secret-scanning"): "for GitHub, which signs its requests",
    ("GET", "/v1/events/stream"): "followed by KeyplaneGuard's cache (keyplane_client._events)",
}

# What the SDK calls a parameter whose API name is a Python keyword.
RENAMED = {"from": "start", "to": "end"}
# Parameters the SDK sends itself.
HANDLED = {"cursor"}


@pytest.fixture(scope="module")
def document(sqlite_server: Server) -> dict[str, Any]:
    spec: dict[str, Any] = httpx.get(f"{sqlite_server.base_url}/openapi.json").json()
    return spec


def _operations(document: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (method.upper(), path): operation
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def _body_fields(document: dict[str, Any], operation: dict[str, Any]) -> set[str]:
    content = operation.get("requestBody", {}).get("content", {})
    schema = content.get("application/json", {}).get("schema", {})
    fields: set[str] = set()
    schemas = document["components"]["schemas"]
    for option in [schema, *schema.get("anyOf", [])]:
        resolved = schemas[option["$ref"].rsplit("/", 1)[-1]] if "$ref" in option else option
        fields |= set(resolved.get("properties", {}))
    return fields


def _query(operation: dict[str, Any]) -> set[str]:
    return {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}


def _method(client: Any, name: str) -> Any:
    namespace, method = name.split(".")
    return getattr(getattr(client, namespace), method)


def test_every_operation_has_an_sdk_method_or_a_reason(document: dict[str, Any]) -> None:
    documented = set(_operations(document))
    missing = documented - set(OPERATIONS) - set(LEFT_OUT)
    assert not missing, f"operations without an SDK method (add one, or a reason): {missing}"
    assert set(OPERATIONS) | set(LEFT_OUT) <= documented, "stale entries"


def test_every_field_and_query_parameter_is_a_keyword(document: dict[str, Any]) -> None:
    operations = _operations(document)
    kp = Keyplane("http://keyplane.test", "kp_test_x")
    for operation_id, name in OPERATIONS.items():
        operation = operations[operation_id]
        parameters = inspect.signature(_method(kp, name)).parameters.values()
        keywords = {p.name for p in parameters if p.kind == inspect.Parameter.KEYWORD_ONLY}
        wanted = _body_fields(document, operation) | {
            RENAMED.get(p, p) for p in _query(operation) - HANDLED
        }
        # verify's key is positional: the one thing always given.
        assert wanted - {"key"} <= keywords, f"{name} lacks {wanted - keywords}"
        unknown = keywords - wanted
        assert not unknown, f"{name} sends {unknown}"
    kp.close()


def test_the_async_client_mirrors_the_blocking_one() -> None:
    sync = Keyplane("http://keyplane.test", "kp_test_x")
    asynchronous = AsyncKeyplane("http://keyplane.test", "kp_test_x")
    for name in {*OPERATIONS.values(), "keys.disable", "keys.enable", "audit_events.export_events"}:
        blocking, awaited = _method(sync, name), _method(asynchronous, name)
        assert list(inspect.signature(blocking).parameters) == list(
            inspect.signature(awaited).parameters
        ), name
        lists = name.endswith((".list", ".deliveries", ".export", ".export_events", ".children"))
        if not lists:
            assert inspect.iscoroutinefunction(awaited), name
    sync.close()
    run(asynchronous.close)
