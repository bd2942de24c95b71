"""GET /v1/auth/nginx and the route table it reads (PATCH /v1/org {"route_table"}): the
answers nginx's auth_request acts on, over loopback HTTP against SQLite and PostgreSQL.
The same exchange through a real nginx: tests/e2e/test_nginx_auth.py."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest

from keyplane.domain.routes import ROUTES_MAX

from conftest import Org
from support import problem

ROUTES = [
    {"method": "GET", "path": "/models/**", "scopes": ["models:read"]},
    {"method": "POST", "path": "/models/*/deploy", "scopes": ["models:deploy"]},
    {"method": "*", "path": "/status", "scopes": []},
]


@pytest.fixture
def routed(org: Org) -> Org:
    """``org`` with a ``models`` resource and the route table above."""
    made = org.api.post("/v1/resources", json={"name": "models", "actions": ["read", "deploy"]})
    assert made.status_code == 201, made.text
    table = org.api.patch("/v1/org", json={"route_table": ROUTES})
    assert table.status_code == 200, table.text
    return org


def ask(
    org: Org,
    key: str | None,
    method: str = "GET",
    uri: str = "/models/llama",
    *,
    org_id: str | None = None,
    **headers: str,
) -> httpx.Response:
    sent = {
        "X-Keyplane-Org": org_id or org.id,
        "X-Original-Method": method,
        "X-Original-URI": uri,
        **headers,
    }
    if key is not None:
        sent["Authorization"] = f"Bearer {key}"
    return httpx.get(f"{org.server.base_url}/v1/auth/nginx", headers=sent, timeout=10)


def key(org: Org, **body: Any) -> dict[str, Any]:
    return org.api.create_key(**{"name": "caller", **body})


# ---- the route table ----------------------------------------------------------------------


def test_the_route_table_is_stored_in_order_and_its_change_audited(routed: Org) -> None:
    body = routed.api.get("/v1/org").json()

    assert body["route_table"] == ROUTES
    events = routed.api.get("/v1/audit-events", params={"action": "org.update"}).json()["data"]
    assert events[0]["changes"]["route_table"] == {"before": [], "after": ROUTES}


def test_methods_are_stored_in_upper_case_and_repeated_scopes_once(routed: Org) -> None:
    table = [{"method": "get", "path": "/a", "scopes": ["models:read", "models:read"]}]

    body = routed.api.patch("/v1/org", json={"route_table": table}).json()

    assert body["route_table"] == [{"method": "GET", "path": "/a", "scopes": ["models:read"]}]


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"method": "FETCH", "path": "/a", "scopes": []}, "route_table[0].method"),
        ({"method": "GET", "path": "a/b", "scopes": []}, "route_table[0].path"),
        ({"method": "GET", "path": "/a//b", "scopes": []}, "route_table[0].path"),
        ({"method": "GET", "path": "/a/../b", "scopes": []}, "route_table[0].path"),
        ({"method": "GET", "path": "/a/b**", "scopes": []}, "route_table[0].path"),
        ({"method": "GET", "path": "/a?x=1", "scopes": []}, "route_table[0].path"),
        ({"method": "GET", "path": "/a%2Fb", "scopes": []}, "route_table[0].path"),
        ({"method": "GET", "path": "/a", "scopes": ["nothing:read"]}, "route_table[0].scopes[0]"),
        ({"method": "GET", "path": "/a", "scopes": ["models:fly"]}, "route_table[0].scopes[0]"),
        ({"method": "GET", "path": "/a", "scopes": ["not a scope"]}, "route_table[0].scopes[0]"),
        ({"method": "GET", "path": "/a"}, "route_table[0].scopes"),
        ({"method": "GET", "path": "/a", "scopes": [], "why": 1}, "route_table[0].why"),
    ],
)
def test_a_bad_rule_is_a_422_naming_its_field(routed: Org, rule: Any, field: str) -> None:
    response = routed.api.patch("/v1/org", json={"route_table": [rule]})

    problem(response, 422, field)
    assert routed.api.get("/v1/org").json()["route_table"] == ROUTES


def test_a_rule_that_can_never_apply_and_too_many_rules_are_refused(routed: Org) -> None:
    twice = [{"method": "GET", "path": "/a", "scopes": []}] * 2
    problem(routed.api.patch("/v1/org", json={"route_table": twice}), 422, "route_table[1].path")

    many = [{"method": "GET", "path": f"/r{i}", "scopes": []} for i in range(ROUTES_MAX + 1)]
    problem(routed.api.patch("/v1/org", json={"route_table": many}), 422, "route_table")
    problem(routed.api.patch("/v1/org", json={"route_table": None}), 422, "route_table")


def test_changing_the_route_table_needs_org_write(routed: Org) -> None:
    reader = routed.key_with("org:read")

    body = problem(reader.patch("/v1/org", json={"route_table": []}), 403)

    assert body["missing_scope"] == "org:write"


# ---- GET /v1/auth/nginx -------------------------------------------------------------------


def test_an_allowed_request_is_a_204_telling_the_upstream_who_called(routed: Org) -> None:
    app = routed.api.post("/v1/apps", json={"name": "acme", "scopes": ["models:read"]}).json()
    caller = key(routed, app_id=app["id"])

    response = ask(routed, caller["key"], uri="/models/llama/versions?stream=1")

    assert response.status_code == 204, response.text
    assert response.headers["x-keyplane-key-id"] == caller["id"]
    assert response.headers["x-keyplane-app-id"] == app["id"]
    assert response.headers["x-keyplane-scopes"] == "models:read"
    assert "ratelimit" not in response.headers  # a key without limits
    assert response.content == b""


def test_an_access_token_passes_as_its_key_narrowed_to_its_scopes(routed: Org) -> None:
    caller = key(routed, scopes=["models:read", "models:deploy"])
    issued = httpx.post(
        f"{routed.server.base_url}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "models:read"},
        auth=(str(caller["id"]), str(caller["key"])),
        timeout=10,
    )
    assert issued.status_code == 200, issued.text
    token = issued.json()["access_token"]

    allowed = ask(routed, token)
    assert allowed.status_code == 204, allowed.text
    assert allowed.headers["x-keyplane-key-id"] == caller["id"]
    assert allowed.headers["x-keyplane-scopes"] == "models:read"
    problem(ask(routed, token, "POST", "/models/llama/deploy"), 403)  # not in the token
    assert routed.api.patch(f"/v1/keys/{caller['id']}", json={"status": "inactive"}).is_success
    problem(ask(routed, token), 401)  # its key is disabled


def test_a_limited_key_spends_and_hears_its_limits_then_429(routed: Org) -> None:
    limited = key(
        routed,
        scopes=["models:read"],
        ratelimits=[{"name": "burst", "limit": 2, "period_seconds": 60}],
    )

    first, second, third = (ask(routed, limited["key"]) for _ in range(3))

    assert (first.status_code, second.status_code) == (204, 204)
    assert first.headers["ratelimit-policy"] == '"burst";q=2;w=60'
    assert first.headers["ratelimit"].startswith('"burst";r=1;')
    body = problem(third, 429)
    assert body["code"] == "RATE_LIMITED"
    assert int(third.headers["retry-after"]) >= 1


@pytest.mark.parametrize(
    ("method", "uri", "slug"),
    [
        ("POST", "/models/llama/deploy", "missing-scope"),  # needs models:deploy
        ("DELETE", "/models/llama", "no-route"),  # no rule for the method
        ("GET", "/admin", "no-route"),  # no rule at all: denied by default
        ("GET", "/models/", "no-route"),  # ** needs a segment
        ("get", "/models/llama", "no-route"),  # methods are case-sensitive
        ("GET", "/models/a/../../admin", "no-route"),  # ambiguous, whatever it resolves to
        ("GET", "/models/a/%2E%2E/admin", "no-route"),
        ("GET", "/models//llama", "no-route"),
        ("GET", "/models/a%2Fb", "no-route"),
        ("GET", "/models/%252e%252e", "no-route"),  # double encoding
        ("GET", "/models/a\\b", "no-route"),
        ("GET", "/models/%zz", "no-route"),
        ("GET", "http://evil.example/models/llama", "no-route"),
    ],
)
def test_what_no_rule_allows_is_a_403(routed: Org, method: str, uri: str, slug: str) -> None:
    reader = key(routed, scopes=["models:read"])

    body = problem(ask(routed, reader["key"], method, uri), 403)

    assert body["type"] == f"urn:keyplane:problem:{slug}"


def test_the_query_string_and_percent_encoding_do_not_change_the_rule(routed: Org) -> None:
    reader = key(routed, scopes=["models:read"])

    assert ask(routed, reader["key"], uri="/models/%6Clama?x=/admin").status_code == 204
    assert ask(routed, reader["key"], "HEAD", "/status?a=b").status_code == 204


def test_the_allowlist_judges_the_client_address(routed: Org) -> None:
    # Here the client is this test, from 127.0.0.1 (through nginx, the address nginx
    # forwards: tests/e2e/test_nginx_auth.py).
    here = key(routed, scopes=["models:read"], ip_allowlist=["127.0.0.1"])
    elsewhere = key(routed, scopes=["models:read"], ip_allowlist=["203.0.113.7"])

    assert ask(routed, here["key"]).status_code == 204
    refused = problem(ask(routed, elsewhere["key"]), 403)
    assert refused["type"] == "urn:keyplane:problem:ip-forbidden"


@pytest.mark.parametrize("case", ["missing", "unknown", "disabled", "expired", "other org"])
def test_a_key_that_cannot_be_used_is_a_401(routed: Org, other_org: Org, case: str) -> None:
    presented: str | None = None
    if case == "unknown":
        presented = "kp_live_" + "x" * 38
    elif case == "disabled":
        made = key(routed, scopes=["models:read"])
        presented = made["key"]
        routed.api.patch(f"/v1/keys/{made['id']}", json={"status": "inactive"})
    elif case == "expired":
        soon = (routed.server.clock() + timedelta(seconds=30)).isoformat()
        presented = key(routed, scopes=["models:read"], expires_at=soon)["key"]
        routed.server.clock.advance(timedelta(minutes=1))
    elif case == "other org":
        presented = str(other_org.api.create_key(name="elsewhere")["key"])

    for uri in ("/models/llama", "/admin"):  # dead before unrouted
        response = ask(routed, presented, uri=uri)
        problem(response, 401)
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_misconfigured_gateway_hears_which_headers_are_missing(routed: Org) -> None:
    reader = key(routed, scopes=["models:read"])
    sent = {"X-Original-Method": "GET", "X-Original-URI": "/models/x"}
    url = f"{routed.server.base_url}/v1/auth/nginx"

    response = httpx.get(url, headers={**sent, "Authorization": f"Bearer {reader['key']}"})

    assert "X-Keyplane-Org" in problem(response, 400)["detail"]
    # Without a key, that comes first: nothing else is looked at.
    assert problem(httpx.get(url, headers=sent), 401)


def test_a_route_table_change_applies_to_the_next_request(routed: Org) -> None:
    reader = key(routed, scopes=["models:read"])
    assert ask(routed, reader["key"]).status_code == 204

    routed.api.patch("/v1/org", json={"route_table": []})

    assert ask(routed, reader["key"]).status_code == 403
