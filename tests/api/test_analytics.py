"""/v1/analytics: every verification and key-authenticated call is counted per key, minute
and outcome; the series and the busiest keys read those counts back, within the caller's
organization only."""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from keyplane.app import build
from keyplane.domain.tokens import mint_key
from keyplane.settings import Settings
from keyplane.storage.engine import sqlite_path

from conftest import TEST_SECRET, Api, Clock, CreatedKeys, Org, Server
from support import problem


def eventually(read: Callable[[], Any], expected: Any, timeout: float = 5.0) -> Any:
    """``read()`` once it equals ``expected``: counts reach the database a flush later."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if value == expected or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def around(server: Server, granularity: str = "minute") -> dict[str, str]:
    now = server.clock()
    return {
        "from": (now - timedelta(minutes=10)).isoformat(),
        "to": (now + timedelta(minutes=10)).isoformat(),
        "granularity": granularity,
    }


def series(api: Api, **params: str) -> dict[str, Any]:
    response = api.get("/v1/analytics/usage", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def totals(api: Api, **params: str) -> dict[str, int]:
    summed: Counter[str] = Counter()
    for point in series(api, **around(api.server), **params)["data"]:
        summed.update(point["counts"])
    return dict(summed)


@pytest.fixture
def analyst(org: Org) -> Api:
    return org.key_with("analytics:read")


@pytest.fixture
def verifier(org: Org) -> Api:
    return org.key_with("keys:verify")


def test_verifications_count_per_key_by_outcome(org: Org, analyst: Api, verifier: Api) -> None:
    target = org.api.create_key(scopes=["apps:read"])
    for _ in range(3):
        assert verifier.verify(str(target["key"]), ["apps:read"])["code"] == "VALID"
    for _ in range(2):
        assert verifier.verify(str(target["key"]), ["apps:write"])["code"] == "INSUFFICIENT_SCOPE"

    expected = {"VALID": 3, "INSUFFICIENT_SCOPE": 2}
    assert eventually(lambda: totals(analyst, key_id=str(target["id"])), expected) == expected


def test_api_calls_count_the_outcome_of_authentication(org: Org, analyst: Api) -> None:
    made = org.api.create_key(scopes=["apps:read"])
    caller = org.api.as_key(str(made["key"]))
    assert caller.get("/v1/apps").status_code == 200
    assert caller.get("/v1/keys").status_code == 403  # authenticated, lacking a scope
    patched = org.api.patch(f"/v1/keys/{made['id']}", json={"status": "inactive"})
    assert patched.status_code == 200
    assert caller.get("/v1/apps").status_code == 401

    expected = {"VALID": 2, "DISABLED": 1}
    assert eventually(lambda: totals(analyst, key_id=str(made["id"])), expected) == expected


def test_a_verifying_call_counts_for_the_caller_and_for_the_key_it_asks_about(
    org: Org, analyst: Api, verifier: Api
) -> None:
    target = org.api.create_key()
    verifier.verify(str(target["key"]))
    assert verifier.get("/v1/org").status_code == 403  # authenticated all the same: counted

    def ranked() -> dict[str, dict[str, int]]:
        params = {**around(org.server, "day"), "limit": "100"}
        rows = analyst.get("/v1/analytics/top-keys", params=params).json()["data"]
        return {row["key_id"]: row["counts"] for row in rows}

    found = eventually(lambda: ranked().get(str(target["id"])), {"VALID": 1})
    assert found == {"VALID": 1}
    # The verifier's own key: two calls, which may land a flush after the target's count.
    assert eventually(lambda: {"VALID": 2} in ranked().values(), True)


def test_answers_about_no_key_of_the_organization_count_in_it_against_no_key(
    org: Org, other_org: Org, analyst: Api, verifier: Api
) -> None:
    theirs = other_org.api.create_key()
    assert verifier.verify(mint_key())["code"] == "NOT_FOUND"
    assert verifier.verify(str(theirs["key"]))["code"] == "NOT_FOUND"
    their_analyst = other_org.key_with("analytics:read")

    def not_found() -> int:
        return totals(analyst).get("NOT_FOUND", 0)

    assert eventually(not_found, 2) == 2
    assert totals(their_analyst, key_id=str(theirs["id"])) == {}
    top = analyst.get("/v1/analytics/top-keys", params=around(org.server, "day")).json()
    assert None not in [row["key_id"] for row in top["data"]]


def test_counts_fall_into_the_minute_of_the_clock_and_roll_up_to_the_hour(
    org: Org, analyst: Api, verifier: Api
) -> None:
    target = org.api.create_key()
    verifier.verify(str(target["key"]))
    org.server.clock.advance(timedelta(minutes=2))
    verifier.verify(str(target["key"]))
    verifier.verify(str(target["key"]))
    key_id = str(target["id"])

    def counted_minutes() -> list[dict[str, int]]:
        points = series(analyst, key_id=key_id, **around(org.server))["data"]
        return [p["counts"] for p in points if p["counts"]]

    assert eventually(counted_minutes, [{"VALID": 1}, {"VALID": 2}]) == [
        {"VALID": 1},
        {"VALID": 2},
    ]
    hours = series(analyst, key_id=key_id, **around(org.server, "hour"))["data"]
    assert sum(p["counts"].get("VALID", 0) for p in hours) == 3


def test_a_series_lists_every_bucket_of_the_range_oldest_first(org: Org, analyst: Api) -> None:
    key = org.api.create_key()
    body = series(
        analyst,
        key_id=str(key["id"]),
        granularity="hour",
        **{"from": "2026-01-01T10:30:00Z", "to": "2026-01-01T14:00:00+00:00"},
    )

    assert body["granularity"] == "hour"
    assert body["from"] == "2026-01-01T10:00:00Z"
    assert [p["start"] for p in body["data"]] == [
        "2026-01-01T10:00:00Z",
        "2026-01-01T11:00:00Z",
        "2026-01-01T12:00:00Z",
        "2026-01-01T13:00:00Z",
    ]
    assert all(p["counts"] == {} for p in body["data"])


def test_an_apps_series_sums_its_keys(org: Org, analyst: Api, verifier: Api) -> None:
    app = org.api.post("/v1/apps", json={"name": f"usage app {mint_key()[-8:]}"}).json()
    for _ in range(2):
        made = org.api.create_key(app_id=app["id"])
        verifier.verify(str(made["key"]))
    org.api.create_key()  # not in the app

    assert eventually(lambda: totals(analyst, app_id=app["id"]), {"VALID": 2}) == {"VALID": 2}


def test_top_keys_are_the_busiest_first(org: Org, analyst: Api, verifier: Api) -> None:
    busy, quiet = org.api.create_key(), org.api.create_key()
    for _ in range(3):
        verifier.verify(str(busy["key"]))
    verifier.verify(str(quiet["key"]))

    def ranking() -> list[tuple[str, int]]:
        params = {**around(org.server, "day"), "limit": "100"}
        rows = analyst.get("/v1/analytics/top-keys", params=params).json()["data"]
        wanted = (busy["id"], quiet["id"])
        return [(row["key_id"], row["total"]) for row in rows if row["key_id"] in wanted]

    expected = [(busy["id"], 3), (quiet["id"], 1)]
    assert eventually(ranking, expected) == expected


@pytest.mark.parametrize("field", ["key_id", "app_id"])
def test_another_organizations_key_or_app_is_a_404(
    org: Org, other_org: Org, analyst: Api, field: str
) -> None:
    if field == "key_id":
        theirs = str(other_org.api.create_key()["id"])
    else:
        theirs = other_org.api.post("/v1/apps", json={"name": "their app"}).json()["id"]

    response = analyst.get("/v1/analytics/usage", params={field: theirs})

    problem(response, 404)
    assert theirs in response.json()["detail"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-01-03T00:00:00Z", "granularity": "minute"},
            "to",
        ),
        (
            {"from": "2026-01-01T00:00:00Z", "to": "2026-06-01T00:00:00Z", "granularity": "hour"},
            "to",
        ),
        ({"granularity": "week"}, "granularity"),
        ({"from": "2026-01-01T00:00:00"}, "from"),  # no zone: ambiguous
        ({"to": "yesterday"}, "to"),
        ({"to": "0.5"}, "to"),  # seconds since 1970: not the documented form
        ({"key_id": "key_x", "app_id": "app_x"}, "app_id"),
    ],
)
def test_a_bad_range_is_a_422_naming_the_field(
    analyst: Api, params: dict[str, str], field: str
) -> None:
    problem(analyst.get("/v1/analytics/usage", params=params), 422, field)


@pytest.mark.parametrize("params", [{"limit": "0"}, {"limit": "101"}, {"granularity": "year"}])
def test_top_keys_refuse_a_bad_limit_or_granularity(analyst: Api, params: dict[str, str]) -> None:
    name = next(iter(params))
    problem(analyst.get("/v1/analytics/top-keys", params=params), 422, name)


# A server of the test's own whose counter flushes only when told, on a database whose
# usage table can be taken away.
@pytest.fixture
def own_server(database_url: str) -> Iterator[Server]:
    settings = Settings(
        database_url=database_url, secret_key=TEST_SECRET, usage_flush_interval=3600
    )
    running = Server(build(settings), Clock(), database_url, sqlite_path(database_url))
    running.start()
    yield running
    running.stop()


def _rename(server: Server, old: str, new: str) -> None:
    with server.kp.store.engine.begin() as conn:  # type: ignore[attr-defined]
        conn.execute(text(f"ALTER TABLE {old} RENAME TO {new}"))


def test_a_failing_flush_never_breaks_verification_and_loses_no_count(
    own_server: Server, created_keys: CreatedKeys, caplog: pytest.LogCaptureFixture
) -> None:
    made = own_server.kp.orgs.create("Usage fault org", "owner@usage-fault.example")
    owner = Api(own_server, made.api_key, created_keys)
    target = owner.create_key()
    own_server.kp.counter.flush()
    _rename(own_server, "usage_counts", "usage_counts_away")
    try:
        for _ in range(3):
            assert owner.verify(str(target["key"]))["code"] == "VALID"
        with caplog.at_level(logging.ERROR, logger="keyplane.usage"):
            own_server.kp.counter.flush()
        assert "could not record usage" in caplog.text
        assert owner.verify(str(target["key"]))["code"] == "VALID"
    finally:
        _rename(own_server, "usage_counts_away", "usage_counts")
    own_server.kp.counter.flush()

    assert totals(owner, key_id=str(target["id"])) == {"VALID": 4}
    created_keys.close_clients()


def test_counting_can_be_turned_off(database_url: str, created_keys: CreatedKeys) -> None:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET, usage_counting=False)
    server = Server(build(settings), Clock(), database_url, sqlite_path(database_url))
    server.start()
    try:
        made = server.kp.orgs.create("Quiet org", "owner@quiet.example")
        owner = Api(server, made.api_key, created_keys)
        assert owner.verify(str(owner.create_key()["key"]))["code"] == "VALID"
        server.kp.counter.flush()

        assert totals(owner) == {}
    finally:
        server.stop()
        created_keys.close_clients()


def test_a_series_defaults_to_the_last_day_by_hour(analyst: Api) -> None:
    body = series(analyst)  # the defaults: by hour, the last day up to now

    assert body["granularity"] == "hour"
    start = datetime.fromisoformat(body["from"])
    end = datetime.fromisoformat(body["to"])
    assert timedelta(hours=24) <= end - start < timedelta(hours=25)
    assert len(body["data"]) in (24, 25)
