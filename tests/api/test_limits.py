"""Per-key limits through the API: the fields on keys, apps and the organization, and what
verification answers (IP_FORBIDDEN, RATE_LIMITED, USAGE_EXCEEDED with the numbers), in the
documented order, spending nothing on a refusal. On SQLite and PostgreSQL with limits in
process, and on PostgreSQL with limits in Redis; the server's clock moved instead of
waiting."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from keyplane.storage.tables import api_keys

from conftest import Api, Org, Server
from support import problem

MINUTE = {"name": "minute", "limit": 3, "period_seconds": 60}
DAILY = {"name": "daily", "limit": 10000, "period_seconds": 86400}


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgresql", marks=pytest.mark.postgres),
        pytest.param("redis", marks=[pytest.mark.postgres, pytest.mark.redis]),
    ]
)
def server(request: pytest.FixtureRequest) -> Server:
    """The server under test: each backend, and limits in Redis (conftest.redis_server)."""
    fixture = {"sqlite": "sqlite_server", "postgresql": "postgres_server"}.get(
        request.param, "redis_server"
    )
    result: Server = request.getfixturevalue(fixture)
    return result


@pytest.fixture
def verifier(org: Org) -> Api:
    return org.key_with("keys:verify")


def verify(api: Api, key: object, **body: Any) -> dict[str, Any]:
    response = api.post("/v1/keys/verify", json={"key": key, **body})
    assert response.status_code == 200, response.text
    verdict: dict[str, Any] = response.json()
    return verdict


def codes(api: Api, key: object, times: int, **body: Any) -> list[str]:
    return [verify(api, key, **body)["code"] for _ in range(times)]


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


# ---- the fields ---------------------------------------------------------------------------


def test_a_key_is_created_with_limits_quota_and_allowlist(org: Org) -> None:
    created = org.api.create_key(
        ratelimits=[DAILY, MINUTE],
        quota={"remaining": 1000, "refill": {"amount": 1000, "interval": "monthly"}},
        ip_allowlist=["203.0.113.0/24", "2001:db8::1"],
    )
    assert created["ratelimits"] == [DAILY, MINUTE]
    assert created["quota"] == {
        "remaining": 1000,
        "refill": {"amount": 1000, "interval": "monthly", "day_of_month": 1},
    }
    assert created["ip_allowlist"] == ["203.0.113.0/24", "2001:db8::1"]
    read = org.api.get(f"/v1/keys/{created['id']}").json()
    assert read["ratelimits"] == [DAILY, MINUTE]
    assert [(s["name"], s["remaining"]) for s in read["current_ratelimits"]] == [
        ("daily", 10000),
        ("minute", 3),
    ]
    listed = org.api.get("/v1/keys").json()["data"]
    assert next(k for k in listed if k["id"] == created["id"])["current_ratelimits"] is None


def test_a_key_without_limits_has_empty_fields(org: Org) -> None:
    created = org.api.create_key()
    assert (created["ratelimits"], created["quota"], created["ip_allowlist"]) == ([], None, [])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ratelimits": [MINUTE, {**MINUTE, "period_seconds": 0}]}, "ratelimits[1].period_seconds"),
        ({"ratelimits": [MINUTE, MINUTE]}, "ratelimits[1].name"),
        ({"ratelimits": [{**MINUTE, "name": "Has Space"}]}, "ratelimits[0].name"),
        ({"ratelimits": [{**MINUTE, "limit": 10**10}]}, "ratelimits[0].limit"),
        ({"quota": {"remaining": -1}}, "quota.remaining"),
        ({"quota": {}}, "quota.remaining"),
        ({"quota": {"refill": {"amount": 5, "interval": "weekly"}}}, "quota.refill.interval"),
        ({"ip_allowlist": ["10.0.0.0/8", "localhost"]}, "ip_allowlist[1]"),
    ],
)
def test_invalid_limits_are_a_422_naming_the_field(
    org: Org, body: dict[str, Any], field: str
) -> None:
    problem(org.api.post("/v1/keys", json={"name": "bad", **body}), 422, field)


def test_limits_change_by_patch_and_the_audit_log_records_them(org: Org) -> None:
    key = org.api.create_key(quota={"remaining": 5})
    response = org.api.patch(
        f"/v1/keys/{key['id']}",
        json={"ratelimits": [MINUTE], "ip_allowlist": ["10.0.0.0/8"], "quota": {"remaining": 9}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["ratelimits"], body["ip_allowlist"]) == ([MINUTE], ["10.0.0.0/8"])
    assert body["quota"] == {"remaining": 9, "refill": None}
    events = org.api.get("/v1/audit-events", params={"action": "key.update"}).json()["data"]
    assert events[0]["changes"] == {
        "ratelimits": {"before": [], "after": [MINUTE]},
        "ip_allowlist": {"before": [], "after": ["10.0.0.0/8"]},
        "quota": {
            "before": {"remaining": 5, "refill": None},
            "after": {"remaining": 9, "refill": None},
        },
    }
    problem(org.api.patch(f"/v1/keys/{key['id']}", json={"ratelimits": None}), 422, "ratelimits")
    cleared = org.api.patch(f"/v1/keys/{key['id']}", json={"quota": None, "ratelimits": []})
    assert (cleared.json()["quota"], cleared.json()["ratelimits"]) == (None, [])


def test_apps_and_the_organization_carry_default_limits(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "a", "ratelimits": [MINUTE]})
    assert app.status_code == 201, app.text
    assert app.json()["ratelimits"] == [MINUTE]
    patched = org.api.patch(f"/v1/apps/{app.json()['id']}", json={"ratelimits": [DAILY]})
    assert patched.json()["ratelimits"] == [DAILY]
    problem(
        org.api.patch(f"/v1/apps/{app.json()['id']}", json={"ratelimits": [DAILY, DAILY]}),
        422,
        "ratelimits[1].name",
    )
    response = org.api.patch("/v1/org", json={"ratelimits": [MINUTE]})
    assert response.status_code == 200, response.text
    assert response.json()["ratelimits"] == [MINUTE]
    [event] = org.api.get("/v1/audit-events", params={"action": "org.update"}).json()["data"][:1]
    assert event["changes"]["ratelimits"] == {"before": [], "after": [MINUTE]}


# ---- verification -------------------------------------------------------------------------


def test_a_rate_limit_admits_its_burst_then_answers_rate_limited_with_the_numbers(
    org: Org, verifier: Api
) -> None:
    key = org.api.create_key(ratelimits=[MINUTE])["key"]
    first = verify(verifier, key)
    assert first["code"] == "VALID"
    [state] = first["ratelimits"]
    assert (state["name"], state["limit"], state["remaining"]) == ("minute", 3, 2)
    assert state["reset_seconds"] == 20
    assert datetime.fromisoformat(state["reset_at"]) > datetime.now(UTC)
    assert codes(verifier, key, 3) == ["VALID", "VALID", "RATE_LIMITED"]
    refused = verify(verifier, key)
    assert refused["valid"] is False
    assert refused["ratelimits"][0]["remaining"] == 0
    org.server.clock.advance(timedelta(seconds=20))
    assert codes(verifier, key, 2) == ["VALID", "RATE_LIMITED"]


def test_key_limits_override_app_limits_override_org_limits_by_name(org: Org) -> None:
    # The organization's defaults apply to every key, the callers' own too: the verifying
    # key overrides "minute" for itself, and the owner's key changes the org last.
    verifier = org.key_with("keys:verify", ratelimits=[{**MINUTE, "limit": 1000}])
    app = org.api.post("/v1/apps", json={"name": "a", "ratelimits": [{**MINUTE, "limit": 2}]})
    in_app = org.api.create_key(app_id=app.json()["id"])["key"]
    own = org.api.create_key(app_id=app.json()["id"], ratelimits=[{**MINUTE, "limit": 4}])["key"]
    plain = org.api.create_key()["key"]
    response = org.api.patch("/v1/org", json={"ratelimits": [{**MINUTE, "limit": 1}, DAILY]})
    assert response.status_code == 200, response.text
    assert codes(verifier, plain, 2) == ["VALID", "RATE_LIMITED"]
    assert codes(verifier, in_app, 3) == ["VALID", "VALID", "RATE_LIMITED"]
    assert codes(verifier, own, 5) == ["VALID"] * 4 + ["RATE_LIMITED"]
    assert [s["name"] for s in verify(verifier, own)["ratelimits"]] == ["daily", "minute"]
    # The owner's key is held to the organization's limit of 1 a minute now as well.
    assert [org.api.get("/v1/org").status_code for _ in range(2)] == [200, 429]


def test_a_refused_verification_consumes_neither_rate_nor_quota(org: Org, verifier: Api) -> None:
    key = org.api.create_key(
        ratelimits=[MINUTE, {"name": "hour", "limit": 10, "period_seconds": 3600}],
        quota={"remaining": 10},
    )["key"]
    assert codes(verifier, key, 4) == ["VALID"] * 3 + ["RATE_LIMITED"]
    refused = verify(verifier, key)
    assert [s["remaining"] for s in refused["ratelimits"]] == [7, 0]
    assert refused["quota"] == {"remaining": 7}
    # A check without spending answers as a cost of 1 would, and spends nothing either.
    checked = verify(verifier, key, cost=0)
    assert (checked["code"], checked["quota"]) == ("RATE_LIMITED", {"remaining": 7})


def test_cost_spends_several_and_cost_zero_checks_without_spending(org: Org, verifier: Api) -> None:
    key = org.api.create_key(quota={"remaining": 100})["key"]
    assert verify(verifier, key, cost=60)["quota"] == {"remaining": 40}
    refused = verify(verifier, key, cost=41)
    assert (refused["code"], refused["quota"]) == ("USAGE_EXCEEDED", {"remaining": 40})
    for _ in range(3):
        assert verify(verifier, key, cost=0)["quota"] == {"remaining": 40}
    assert verify(verifier, key, cost=40)["quota"] == {"remaining": 0}
    assert verify(verifier, key, cost=0)["code"] == "USAGE_EXCEEDED"
    problem(verifier.post("/v1/keys/verify", json={"key": key, "cost": -1}), 422, "cost")
    problem(verifier.post("/v1/keys/verify", json={"key": key, "cost": "1"}), 422, "cost")


def test_a_quota_answers_usage_exceeded_until_added_to(org: Org, verifier: Api) -> None:
    created = org.api.create_key(quota={"remaining": 2})
    key = created["key"]
    assert codes(verifier, key, 3) == ["VALID", "VALID", "USAGE_EXCEEDED"]
    response = org.api.patch(f"/v1/keys/{created['id']}", json={"quota": {"add": 500}})
    assert response.status_code == 200, response.text
    assert response.json()["quota"]["remaining"] == 500
    assert verify(verifier, key)["quota"] == {"remaining": 499}
    problem(
        org.api.patch(f"/v1/keys/{org.api.create_key()['id']}", json={"quota": {"add": 5}}),
        422,
        "quota.add",
    )


def test_a_daily_refill_sets_remaining_back_to_the_amount(org: Org, verifier: Api) -> None:
    key = org.api.create_key(quota={"remaining": 1, "refill": {"amount": 5, "interval": "daily"}})[
        "key"
    ]
    assert codes(verifier, key, 2) == ["VALID", "USAGE_EXCEEDED"]
    org.server.clock.advance(timedelta(days=1))
    assert verify(verifier, key)["quota"] == {"remaining": 4}


def test_quota_counts_reach_the_database_in_batches(org: Org, verifier: Api) -> None:
    created = org.api.create_key(quota={"remaining": 10})
    assert codes(verifier, created["key"], 3) == ["VALID"] * 3

    def stored() -> int:
        with org.server.kp.store.engine.connect() as conn:
            query = select(api_keys.c.quota_remaining).where(api_keys.c.id == created["id"])
            return int(conn.scalar(query) or 0)

    assert eventually(stored, 7) == 7
    org.api.patch(f"/v1/keys/{created['id']}", json={"quota": {"add": 3}})
    assert stored() == 10


@pytest.mark.parametrize(
    ("ip", "code"),
    [
        ("203.0.113.9", "VALID"),
        ("2001:db8::1", "VALID"),
        ("::ffff:203.0.113.9", "VALID"),
        ("198.51.100.1", "IP_FORBIDDEN"),
        ("2001:db8::2", "IP_FORBIDDEN"),
        (None, "IP_FORBIDDEN"),
    ],
)
def test_an_allowlist_admits_its_addresses_and_ranges_only(
    org: Org, verifier: Api, ip: str | None, code: str
) -> None:
    key = org.api.create_key(ip_allowlist=["203.0.113.0/24", "2001:db8::1"])["key"]
    body = {"ip": ip} if ip else {}
    assert verify(verifier, key, **body)["code"] == code


def test_the_checks_run_in_the_documented_order(org: Org, verifier: Api) -> None:
    """status, expiry, IP, scopes, rate limits, quota: each refusal names the first."""
    created = org.api.create_key(
        scopes=["apps:read"],
        ip_allowlist=["10.0.0.1"],
        ratelimits=[{**MINUTE, "limit": 1}],
        quota={"remaining": 1},
    )
    key, key_id = created["key"], created["id"]
    inside = {"ip": "10.0.0.1", "scopes": ["apps:read"]}
    assert verify(verifier, key, ip="10.9.9.9", scopes=["apps:write"])["code"] == "IP_FORBIDDEN"
    assert verify(verifier, key, ip="10.0.0.1", scopes=["apps:write"])["code"] == (
        "INSUFFICIENT_SCOPE"
    )
    assert verify(verifier, key, **inside)["code"] == "VALID"
    assert verify(verifier, key, **inside)["code"] == "RATE_LIMITED"  # before the quota
    org.server.clock.advance(timedelta(minutes=1))
    assert verify(verifier, key, **inside)["code"] == "USAGE_EXCEEDED"
    org.api.patch(f"/v1/keys/{key_id}", json={"status": "inactive"})
    assert verify(verifier, key, ip="10.9.9.9")["code"] == "DISABLED"


def test_refusals_are_counted_as_outcomes(org: Org, verifier: Api) -> None:
    analyst = org.key_with("analytics:read")
    created = org.api.create_key(quota={"remaining": 1}, ratelimits=[{**MINUTE, "limit": 1}])
    key = created["key"]
    assert codes(verifier, key, 2) == ["VALID", "RATE_LIMITED"]
    org.server.clock.advance(timedelta(minutes=1))
    assert verify(verifier, key)["code"] == "USAGE_EXCEEDED"
    allow = org.api.create_key(ip_allowlist=["10.0.0.1"])
    assert verify(verifier, allow["key"])["code"] == "IP_FORBIDDEN"
    now = org.server.clock() - timedelta(minutes=1)

    def totals(key_id: object) -> dict[str, int]:
        params = {
            "from": (now - timedelta(minutes=10)).isoformat(),
            "to": (now + timedelta(minutes=10)).isoformat(),
            "granularity": "minute",
            "key_id": str(key_id),
        }
        summed: dict[str, int] = {}
        for point in analyst.get("/v1/analytics/usage", params=params).json()["data"]:
            for outcome, n in point["counts"].items():
                summed[outcome] = summed.get(outcome, 0) + n
        return summed

    expected = {"VALID": 1, "USAGE_EXCEEDED": 1, "RATE_LIMITED": 1}
    assert eventually(lambda: totals(created["id"]), expected) == expected
    assert eventually(lambda: totals(allow["id"]), {"IP_FORBIDDEN": 1}) == {"IP_FORBIDDEN": 1}


def test_a_key_without_limits_answers_empty_numbers(org: Org, verifier: Api) -> None:
    verdict = verify(verifier, org.api.create_key()["key"])
    assert (verdict["ratelimits"], verdict["quota"]) == ([], None)
    assert verify(verifier, "kp_live_nope")["ratelimits"] == []


# ---- keyplane's own API, called with a limited key ----------------------------------------


def test_every_response_to_a_limited_key_carries_the_ratelimit_headers(org: Org) -> None:
    caller = org.key_with(
        "apps:read",
        ratelimits=[{"name": "burst", "limit": 20, "period_seconds": 1}, MINUTE | {"limit": 50}],
    )
    response = caller.get("/v1/apps")
    assert response.status_code == 200, response.text
    assert response.headers["RateLimit-Policy"] == '"burst";q=20;w=1, "minute";q=50;w=60'
    assert response.headers["RateLimit"] == '"burst";r=19;t=1, "minute";r=49;t=2'
    # Also on errors after authentication, and on verification itself.
    missing = caller.get("/v1/apps/app_nope")
    assert missing.status_code == 404
    assert missing.headers["RateLimit"].startswith('"burst";r=')
    verifier = org.key_with("keys:verify", ratelimits=[MINUTE])
    verified = verifier.post("/v1/keys/verify", json={"key": "kp_live_x"})
    assert verified.headers["RateLimit"] == '"minute";r=2;t=20'
    # A key without limits gets none.
    assert "RateLimit" not in org.api.get("/v1/apps").headers


def test_a_key_over_its_limit_gets_429_with_retry_after(org: Org) -> None:
    caller = org.key_with("apps:read", ratelimits=[MINUTE])
    assert [caller.get("/v1/apps").status_code for _ in range(3)] == [200, 200, 200]
    body = problem(caller.get("/v1/apps"), 429)
    assert body["code"] == "RATE_LIMITED"
    refused = caller.get("/v1/apps")
    assert refused.headers["Retry-After"] == "20"
    assert refused.headers["RateLimit"] == '"minute";r=0;t=60'
    org.server.clock.advance(timedelta(seconds=20))
    assert caller.get("/v1/apps").status_code == 200


def test_a_key_out_of_quota_gets_429_until_its_refill(org: Org) -> None:
    caller = org.key_with(
        "apps:read", quota={"remaining": 1, "refill": {"amount": 2, "interval": "daily"}}
    )
    assert caller.get("/v1/apps").status_code == 200
    refused = caller.get("/v1/apps")
    body = problem(refused, 429)
    assert body["code"] == "USAGE_EXCEEDED"
    assert 0 < int(refused.headers["Retry-After"]) <= 86400
    org.server.clock.advance(timedelta(days=1))
    assert caller.get("/v1/apps").status_code == 200


def test_the_verify_endpoint_enforces_the_calling_keys_own_limits(org: Org) -> None:
    verifier = org.key_with("keys:verify", ratelimits=[{**MINUTE, "limit": 1}])
    target = org.api.create_key()["key"]
    assert verify(verifier, target)["code"] == "VALID"
    refused = verifier.post("/v1/keys/verify", json={"key": target})
    assert problem(refused, 429)["code"] == "RATE_LIMITED"
    assert refused.headers["Retry-After"] == "60"


def test_a_key_with_an_allowlist_calls_only_from_its_addresses(org: Org) -> None:
    outside = org.key_with("apps:read", ip_allowlist=["203.0.113.0/24"])
    problem(outside.get("/v1/apps"), 403)
    inside = org.key_with("apps:read", ip_allowlist=["127.0.0.0/8", "::1"])
    assert inside.get("/v1/apps").status_code == 200


def test_openapi_documents_429_for_key_authenticated_operations(org: Org) -> None:
    spec = org.api.get("/openapi.json").json()
    for path in ("/v1/apps", "/v1/keys/{key_id}", "/v1/keys/verify"):
        for operation in spec["paths"][path].values():
            assert "429" in operation["responses"], path


def test_a_rotated_key_keeps_its_limits(org: Org) -> None:
    created = org.api.create_key(
        ratelimits=[MINUTE],
        quota={"remaining": 7, "refill": {"amount": 9, "interval": "daily"}},
        ip_allowlist=["10.0.0.0/8"],
    )
    response = org.api.post(f"/v1/keys/{created['id']}/rotate", json={})
    assert response.status_code == 201, response.text
    rotated = response.json()
    assert rotated["ratelimits"] == [MINUTE]
    assert rotated["quota"] == created["quota"]
    assert rotated["ip_allowlist"] == ["10.0.0.0/8"]


# ---- several processes without Redis ------------------------------------------------------


@pytest.mark.postgres
def test_a_limit_while_several_processes_serve_without_redis_is_a_409(org: Org) -> None:
    if org.server.sqlite_file is not None:
        pytest.skip("SQLite serves from one process: nothing to guard")
    if org.server.kp.settings.redis_url is not None:
        pytest.skip("limits in Redis are exact across processes: nothing to guard")
    from keyplane.storage.limitsguard import HOLDERS, NAMESPACE
    from keyplane.storage.listener import libpq_url

    plain = org.api.create_key()
    app = org.api.post("/v1/apps", json={"name": "plain"}).json()
    # A second node serving the same database, keeping limits in its own memory, as it
    # looks in pg_locks (its own start is tested in tests/storage/test_limitsguard.py; here
    # other tests' limits already exist, so it could not join now).
    other = psycopg.connect(libpq_url(org.server.database_url), autocommit=True)
    other.execute("SELECT pg_advisory_lock_shared(%s, %s)", (NAMESPACE, HOLDERS))
    try:
        attempts = [
            (org.api.post, "/v1/keys", {"name": "k", "ratelimits": [MINUTE]}, "ratelimits"),
            (org.api.post, "/v1/keys", {"name": "k", "quota": {"remaining": 5}}, "quota"),
            (org.api.patch, f"/v1/keys/{plain['id']}", {"ratelimits": [MINUTE]}, "ratelimits"),
            (org.api.post, "/v1/apps", {"name": "limited", "ratelimits": [MINUTE]}, "ratelimits"),
            (org.api.patch, f"/v1/apps/{app['id']}", {"ratelimits": [MINUTE]}, "ratelimits"),
            (org.api.patch, "/v1/org", {"ratelimits": [MINUTE]}, "ratelimits"),
        ]
        for call, path, body, field in attempts:
            refused = problem(call(path, json=body), 409, field)
            assert refused["type"] == "urn:keyplane:problem:limits-need-redis"
            assert "KEYPLANE_REDIS_URL" in refused["detail"]
        assert org.api.patch(f"/v1/keys/{plain['id']}", json={"ratelimits": []}).status_code == 200
    finally:
        other.close()
    response = org.api.patch(f"/v1/keys/{plain['id']}", json={"ratelimits": [MINUTE]})
    assert response.status_code == 200, response.text


def test_openapi_documents_409_where_a_limit_can_be_given(org: Org) -> None:
    spec = org.api.get("/openapi.json").json()
    for path, method in (
        ("/v1/keys", "post"),
        ("/v1/keys/{key_id}", "patch"),
        ("/v1/apps", "post"),
        ("/v1/apps/{app_id}", "patch"),
        ("/v1/org", "patch"),
    ):
        response = spec["paths"][path][method]["responses"]["409"]
        assert "KEYPLANE_REDIS_URL" in response["description"], path
