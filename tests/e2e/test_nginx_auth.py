"""docs/nginx/keyplane-auth.conf, run as written (only its ports and organization id
templated): a real nginx (support.nginx: Debian's binary on its own port and prefix) in
front of a small API (a recording HTTP server), with a real `keyplane serve` behind
``auth_request``. What the API sees, and what the client hears, for each kind of key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import TEST_SECRET, CreatedKeys, free_port
from support.nginx import nginx
from support.receiver import Receiver
from support.serving import clean_env, create_org, serve

pytestmark = [pytest.mark.e2e]

CONFIG = Path(__file__).resolve().parents[2] / "docs" / "nginx" / "keyplane-auth.conf"
PLACEHOLDER = "org_YOUR_ORGANIZATION_ID"
# The client reaches nginx from this loopback address; nginx reaches keyplane from
# 127.0.0.1, its only trusted proxy, so keyplane sees the client as this one.
CLIENT = "127.0.0.2"
ROUTES = [
    {"method": "GET", "path": "/models/**", "scopes": ["models:read"]},
    {"method": "POST", "path": "/models/*/deploy", "scopes": ["models:deploy"]},
    {"method": "*", "path": "/status", "scopes": []},
]


class Stack:
    def __init__(self, owner: httpx.Client, client: httpx.Client, api: Receiver) -> None:
        self.owner = owner  # keyplane itself, as the organization's owner
        self.client = client  # through nginx, from CLIENT
        self.api = api
        self.created: CreatedKeys | None = None

    def key(self, **body: Any) -> dict[str, Any]:
        made = self.owner.post("/v1/keys", json={"name": "caller", **body})
        assert made.status_code == 201, made.text
        created: dict[str, Any] = made.json()
        assert self.created is not None
        self.created.add(created["key"])
        return created

    def call(self, method: str, path: str, key: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        if key is not None:
            headers["Authorization"] = f"Bearer {key}"
        return self.client.request(method, path, headers=headers, **kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, created_keys: CreatedKeys) -> Iterator[Stack]:
    """One stack for the module (starting it is most of the cost); each test makes its own
    keys, starts with the API's record empty and leaves the route table as it found it."""
    tmp_path = tmp_path_factory.mktemp("nginx-auth")
    env = clean_env(
        KEYPLANE_SECRET_KEY=TEST_SECRET,
        KEYPLANE_RUN_JOBS="false",
        KEYPLANE_TRUSTED_PROXIES="127.0.0.1",
    )
    with ExitStack() as stack:
        served = serve(tmp_path, free_port(), env=env)
        keyplane = next(served)
        stack.callback(served.close)
        made = create_org(tmp_path, keyplane.database_url, env, created_keys)
        api = Receiver().start()
        stack.callback(api.stop)
        api.status, api.answer = 200, b"from the api"
        block = CONFIG.read_text()
        assert block.count(PLACEHOLDER) == 1
        block = block.replace(PLACEHOLDER, made["org_id"])
        port = int(keyplane.base_url.rsplit(":", 1)[1])
        base = stack.enter_context(nginx(tmp_path, block, [port, api.port]))
        owner = stack.enter_context(
            httpx.Client(
                base_url=keyplane.base_url,
                headers={"Authorization": f"Bearer {made['api_key']}"},
                timeout=10,
            )
        )
        resource = owner.post(
            "/v1/resources", json={"name": "models", "actions": ["read", "deploy"]}
        )
        assert resource.status_code == 201, resource.text
        table = owner.patch("/v1/org", json={"route_table": ROUTES})
        assert table.status_code == 200, table.text
        client = stack.enter_context(
            httpx.Client(
                base_url=base,
                transport=httpx.HTTPTransport(local_address=CLIENT),
                timeout=10,
            )
        )
        result = Stack(owner, client, api)
        result.created = created_keys
        yield result


@pytest.fixture(autouse=True)
def _fresh_record(stack: Stack) -> None:
    stack.api.received.clear()


def test_a_key_with_the_scope_passes_and_the_api_learns_who_called(stack: Stack) -> None:
    reader = stack.key(scopes=["models:read"])

    # A client cannot speak for keyplane: its own X-Keyplane-* headers are replaced.
    response = stack.call(
        "GET",
        "/models/llama/versions?stream=1",
        reader["key"],
        headers={"X-Keyplane-Key-Id": "key_forged", "X-Keyplane-App-Id": "app_forged"},
    )

    assert response.status_code == 200, response.text
    assert response.text == "from the api"
    seen = stack.api.received[-1]
    assert seen.path == "/models/llama/versions?stream=1"
    assert seen.headers["x-keyplane-key-id"] == reader["id"]
    assert seen.headers["x-keyplane-scopes"] == "models:read"
    assert "x-keyplane-app-id" not in seen.headers
    assert "authorization" not in seen.headers  # the API never needs the key


def test_a_wrong_scope_an_unmatched_route_and_an_ambiguous_path_get_403(stack: Stack) -> None:
    reader = stack.key(scopes=["models:read"])

    refused = [
        stack.call("POST", "/models/llama/deploy", reader["key"]),  # needs models:deploy
        stack.call("GET", "/admin/users", reader["key"]),  # no rule: denied by default
        stack.call("DELETE", "/models/llama", reader["key"]),  # no rule for the method
        stack.call("GET", "/models/a/%2e%2e/%2e%2e/admin", reader["key"]),  # walks out
        stack.call("GET", "/models/a%2Fb", reader["key"]),  # an encoded slash
    ]

    assert [r.status_code for r in refused] == [403] * len(refused)
    assert stack.api.received == []


def test_a_missing_unknown_or_disabled_key_gets_401(stack: Stack) -> None:
    disabled = stack.key(scopes=["models:read"])
    changed = stack.owner.patch(f"/v1/keys/{disabled['id']}", json={"status": "inactive"})
    assert changed.status_code == 200, changed.text

    refused = [
        stack.call("GET", "/models/llama"),
        stack.call("GET", "/models/llama", "kp_live_" + "x" * 38),
        stack.call("GET", "/models/llama", disabled["key"]),
        stack.call("GET", "/admin", disabled["key"]),  # dead before unrouted
    ]

    assert [r.status_code for r in refused] == [401] * len(refused)
    assert all(r.headers["www-authenticate"].startswith("Bearer") for r in refused)
    assert stack.api.received == []


def test_a_rate_limited_key_gets_429_with_retry_after(stack: Stack) -> None:
    limited = stack.key(
        scopes=["models:read"], ratelimits=[{"name": "burst", "limit": 2, "period_seconds": 60}]
    )

    passed = [stack.call("GET", "/models/llama", limited["key"]) for _ in range(2)]
    refused = stack.call("GET", "/models/llama", limited["key"])

    assert [r.status_code for r in passed] == [200, 200]
    assert passed[0].headers["ratelimit-policy"] == '"burst";q=2;w=60'
    assert passed[1].headers["ratelimit"].startswith('"burst";r=0;')
    assert refused.status_code == 429, refused.text
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit"].startswith('"burst";r=0;')
    assert refused.json()["type"] == "urn:keyplane:problem:rate-limited"
    assert len(stack.api.received) == 2


def test_the_allowlist_sees_the_client_address_nginx_forwards(stack: Stack) -> None:
    here = stack.key(scopes=["models:read"], ip_allowlist=[CLIENT])
    elsewhere = stack.key(scopes=["models:read"], ip_allowlist=["203.0.113.7"])

    assert stack.call("GET", "/models/llama", here["key"]).status_code == 200
    forged = stack.call(
        "GET", "/models/llama", elsewhere["key"], headers={"X-Forwarded-For": "203.0.113.7"}
    )
    assert forged.status_code == 403


def test_a_route_table_change_applies_to_the_next_request(stack: Stack) -> None:
    reader = stack.key(scopes=["models:read"])
    assert stack.call("GET", "/status", reader["key"]).status_code == 200

    emptied = stack.owner.patch("/v1/org", json={"route_table": []})
    assert emptied.status_code == 200, emptied.text

    try:
        assert stack.call("GET", "/status", reader["key"]).status_code == 403
        assert stack.call("GET", "/models/llama", reader["key"]).status_code == 403
    finally:
        assert stack.owner.patch("/v1/org", json={"route_table": ROUTES}).status_code == 200
