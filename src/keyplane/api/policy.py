"""Who may call what: every operation of the REST API and the scope it requires.

One declared table, read by people and by the tests: ``tests/api/test_matrix_bfla.py`` checks
it against the routes (each route's ``Require`` dependency in ``api/deps.py`` must state the
scope written here, and an operation missing from the table fails), then calls every
operation as every built-in role and as a key lacking the scope. ``None`` marks a public
operation, answered without credentials; ``KEY_ITSELF`` one that only the key its path
names may call (delegation: ``tests/api/test_children_keys.py`` holds it to that).

The verify route checks its scope by hand (it is the hot path, outside FastAPI's dependency
injection); the table states it all the same and the tests hold the route to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

Operation = tuple[str, str]  # (HTTP method, path template as in the OpenAPI document)

# Not a scope: the operation is open only to the key its path names, authenticated as
# itself, and needs no scope (holding the key is the authority). Any other caller of the
# organization, whatever it holds, gets a 403; a caller of another organization, a 404.
KEY_ITSELF: Final = "(the key itself)"

POLICY: Final[Mapping[Operation, str | None]] = {
    ("GET", "/"): None,
    ("GET", "/healthz"): None,
    # OAuth 2.0 client credentials: the client authenticates with its key id and key (HTTP
    # Basic or form fields), not a bearer; the JWKS is public by nature.
    ("POST", "/oauth/token"): None,
    ("GET", "/.well-known/jwks.json"): None,
    ("POST", "/v1/keys/verify"): "keys:verify",
    # Public: whoever finds a leaked key may report it (routes/leaks.py); GitHub's reports
    # are authenticated by their signature, not by a key.
    ("POST", "/v1/keys/leaked"): None,
    ("POST", "/v1/github/secret-scanning"): None,
    # Public: the key presented is the one judged (against the organization's route table),
    # as a verification judges it; nginx's auth_request calls it for every client request.
    ("GET", "/v1/auth/nginx"): None,
    ("GET", "/v1/events/stream"): "keys:verify",
    ("POST", "/v1/keys"): "api_keys:write",
    ("GET", "/v1/keys"): "api_keys:read",
    ("GET", "/v1/keys/{key_id}"): "api_keys:read",
    ("PATCH", "/v1/keys/{key_id}"): "api_keys:write",
    ("POST", "/v1/keys/{key_id}/rotate"): "api_keys:write",
    ("POST", "/v1/keys/{key_id}/children"): KEY_ITSELF,
    ("GET", "/v1/keys/{key_id}/children"): "api_keys:read",
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
    ("POST", "/v1/presets"): "resources:write",
    ("GET", "/v1/presets"): "resources:read",
    ("GET", "/v1/presets/{preset_id}"): "resources:read",
    ("PATCH", "/v1/presets/{preset_id}"): "resources:write",
    ("DELETE", "/v1/presets/{preset_id}"): "resources:delete",
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
