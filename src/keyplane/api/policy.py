"""Who may call what: every operation of the REST API and the scope it requires.

One declared table, read by people and by the tests: ``tests/api/test_matrix_bfla.py`` checks
it against the routes (each route's ``Require`` dependency in ``api/deps.py`` must state the
scope written here, and an operation missing from the table fails), then calls every
operation as every built-in role and as a key lacking the scope. ``None`` marks a public
operation, answered without credentials.

The verify route checks its scope by hand (it is the hot path, outside FastAPI's dependency
injection); the table states it all the same and the tests hold the route to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

Operation = tuple[str, str]  # (HTTP method, path template as in the OpenAPI document)

POLICY: Final[Mapping[Operation, str | None]] = {
    ("GET", "/"): None,
    ("GET", "/healthz"): None,
    ("POST", "/v1/keys/verify"): "keys:verify",
    ("GET", "/v1/events/stream"): "keys:verify",
    ("POST", "/v1/keys"): "api_keys:write",
    ("GET", "/v1/keys"): "api_keys:read",
    ("GET", "/v1/keys/{key_id}"): "api_keys:read",
    ("PATCH", "/v1/keys/{key_id}"): "api_keys:write",
    ("POST", "/v1/keys/{key_id}/rotate"): "api_keys:write",
    ("DELETE", "/v1/keys/{key_id}"): "api_keys:delete",
    ("POST", "/v1/apps"): "apps:write",
    ("GET", "/v1/apps"): "apps:read",
    ("GET", "/v1/apps/{app_id}"): "apps:read",
    ("PATCH", "/v1/apps/{app_id}"): "apps:write",
    ("DELETE", "/v1/apps/{app_id}"): "apps:delete",
    ("POST", "/v1/profiles"): "profiles:write",
    ("GET", "/v1/profiles"): "profiles:read",
    ("GET", "/v1/profiles/{profile_id}"): "profiles:read",
    ("PATCH", "/v1/profiles/{profile_id}"): "profiles:write",
    ("DELETE", "/v1/profiles/{profile_id}"): "profiles:delete",
    ("GET", "/v1/resources"): "resources:read",
    ("POST", "/v1/resources"): "resources:write",
    ("GET", "/v1/resources/{name}"): "resources:read",
    ("PATCH", "/v1/resources/{name}"): "resources:write",
    ("DELETE", "/v1/resources/{name}"): "resources:delete",
    ("POST", "/v1/users"): "users:write",
    ("GET", "/v1/users"): "users:read",
    ("GET", "/v1/users/{user_id}"): "users:read",
    ("PATCH", "/v1/users/{user_id}"): "users:write",
    ("DELETE", "/v1/users/{user_id}"): "users:delete",
    ("GET", "/v1/org"): "org:read",
    ("PATCH", "/v1/org"): "org:write",
    ("GET", "/v1/analytics/usage"): "analytics:read",
    ("GET", "/v1/analytics/top-keys"): "analytics:read",
    ("GET", "/v1/audit-events"): "audit:read",
    ("GET", "/v1/audit-events/export"): "audit:read",
    ("POST", "/v1/webhooks"): "webhooks:write",
    ("GET", "/v1/webhooks"): "webhooks:read",
    ("GET", "/v1/webhooks/{webhook_id}"): "webhooks:read",
    ("PATCH", "/v1/webhooks/{webhook_id}"): "webhooks:write",
    ("DELETE", "/v1/webhooks/{webhook_id}"): "webhooks:delete",
    ("POST", "/v1/webhooks/{webhook_id}/roll-secret"): "webhooks:write",
    ("GET", "/v1/webhooks/{webhook_id}/deliveries"): "webhooks:read",
    ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): "webhooks:write",
    ("POST", "/v1/webhooks/{webhook_id}/test"): "webhooks:write",
}
