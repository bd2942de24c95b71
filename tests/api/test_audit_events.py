"""GET /v1/audit-events and /v1/audit-events/export: what an event says, the filters, cursor
pages newest first, problem documents for filters that cannot match, and an export that
streams 50,000 events without holding them."""

from __future__ import annotations

import csv
import io
import json
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from keyplane.app import build
from keyplane.domain.ids import new_id
from keyplane.domain.models import AuditEvent
from keyplane.settings import Settings
from keyplane.storage.engine import sqlite_path

from conftest import TEST_SECRET, Clock, CreatedKeys, Org, Server
from support import problem

AGENT = "audit-test/1.0"


def _events(org: Org, **params: object) -> list[dict[str, Any]]:
    """Every matching event, page by page (small pages, to walk the cursor)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {"limit": 3, **params, **({"cursor": cursor} if cursor else {})}
        response = org.api.get("/v1/audit-events", params=query)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(page["data"])
        cursor = page["next_cursor"]
        if cursor is None:
            return found


def test_an_update_names_actor_target_request_and_each_change(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "billing"}).json()
    response = org.api.patch(
        f"/v1/apps/{app['id']}",
        json={"description": "Invoices", "scopes": ["apps:read"]},
        headers={"User-Agent": AGENT},
    )
    assert response.status_code == 200, response.text
    [event] = _events(org, action="app.update")
    assert event["actor"] == {"type": "key", "id": org.owner_key_id, "name": event["actor"]["name"]}
    assert event["actor"]["name"]
    assert event["target"] == {"type": "app", "id": app["id"], "name": "billing"}
    assert (event["client_ip"], event["user_agent"]) == ("127.0.0.1", AGENT)
    assert event["changes"] == {
        "description": {"before": "", "after": "Invoices"},
        "scopes": {"before": [], "after": ["apps:read"]},
    }
    assert event["organization"] == org.id


def test_events_come_newest_first_with_consecutive_sequence_numbers(org: Org) -> None:
    for n in range(4):
        org.api.post("/v1/apps", json={"name": f"app {n}"})
    seqs = [e["seq"] for e in _events(org)]
    assert seqs == list(range(len(seqs), 0, -1))
    assert len(seqs) >= 6


def test_a_key_without_audit_read_is_refused_naming_the_scope(org: Org) -> None:
    body = problem(org.key_with("apps:read").get("/v1/audit-events"), 403)
    assert "audit:read" in body["detail"]


def test_another_organizations_events_are_never_listed(org: Org, other_org: Org) -> None:
    other_org.api.post("/v1/apps", json={"name": "secret project"})
    assert {e["organization"] for e in _events(org)} == {org.id}
    assert all(e["target"]["name"] != "secret project" for e in _events(org))


def test_filters_narrow_by_actor_action_target_and_time(org: Org) -> None:
    clock = org.server.clock
    made = org.api.create_key(name="deployer", scopes=["apps:write", "apps:read"])
    deployer, deployer_id = org.api.as_key(str(made["key"])), made["id"]
    billing = deployer.post("/v1/apps", json={"name": "billing", "scopes": ["apps:read"]}).json()
    start = clock()
    clock.advance(timedelta(minutes=5))
    search = org.api.post("/v1/apps", json={"name": "search"}).json()
    org.api.patch(f"/v1/apps/{search['id']}", json={"description": "later"})
    middle = clock()
    clock.advance(timedelta(minutes=5))
    org.api.delete(f"/v1/apps/{billing['id']}")

    def actions(**params: object) -> list[str]:
        return [e["action"] for e in _events(org, **params)]

    assert actions(actor_id=deployer_id) == ["app.create"]
    assert actions(target_id=billing["id"]) == ["app.delete", "app.create"]
    assert actions(action="app.") == ["app.delete", "app.update", "app.create", "app.create"]
    assert actions(action="app.update") == ["app.update"]
    window = {"from": (start + timedelta(minutes=1)).isoformat(), "to": middle.isoformat()}
    assert actions(**window) == ["app.update", "app.create"]
    assert actions(action="app.", **{"from": middle.isoformat()}) == ["app.delete"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"action": "key.explode"}, "action"),
        ({"action": "spaceship."}, "action"),
        ({"action": "key"}, "action"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01T00:00:00Z"}, "to"),
        ({"from": "2026-11-30T10:00:00"}, "from"),
        ({"from": "2026-11-30T10:00:00Z", "to": "2026-11-30T09:00:00Z"}, "from"),
        ({"actor_id": "x" * 61}, "actor_id"),
        ({"to": "0.5"}, "to"),
        ({"cursor": "key_01aaaaaaaaaaaaaaaaaaaaaaaa"}, "cursor"),
        ({"limit": 0}, "limit"),
    ],
)
@pytest.mark.parametrize("path", ["/v1/audit-events", "/v1/audit-events/export"])
def test_a_filter_that_cannot_match_is_a_problem_naming_it(
    org: Org, path: str, params: dict[str, object], field: str
) -> None:
    if path.endswith("export") and field in ("cursor", "limit"):
        return  # the export has neither: it is the whole range
    problem(org.api.get(path, params=params), 422, field)


def test_an_unknown_export_format_is_a_problem_naming_it(org: Org) -> None:
    problem(org.api.get("/v1/audit-events/export", params={"format": "xml"}), 422, "format")


def test_the_export_holds_exactly_what_the_list_shows(org: Org) -> None:
    for n in range(3):
        org.api.post("/v1/apps", json={"name": f'=HYPERLINK("evil") {n}'})
    listed = _events(org, action="app.")
    response = org.api.get("/v1/audit-events/export", params={"action": "app.", "format": "jsonl"})
    assert response.headers["content-type"] == "application/jsonl"
    assert 'filename="audit-events.jsonl"' in response.headers["content-disposition"]
    assert [json.loads(line) for line in response.text.splitlines()] == listed
    as_csv = org.api.get("/v1/audit-events/export", params={"action": "app.", "format": "csv"})
    assert as_csv.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["id"] for r in rows] == [e["id"] for e in listed]
    # A spreadsheet shows a name that looks like a formula as text instead of running it.
    assert {r["target_name"][:2] for r in rows} == {"'="}


@pytest.fixture
def own_org(database_url: str, created_keys: CreatedKeys) -> Iterator[Org]:
    """An organization on a server and database of its own: 50,000 events would otherwise
    stay in the session's databases and slow every later search of them (the leak search)."""
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET)
    running = Server(build(settings), Clock(), database_url, sqlite_path(database_url))
    running.start()
    try:
        yield Org(running, created_keys)
    finally:
        created_keys.close_clients()
        running.stop()


def test_an_export_of_50000_events_streams_in_chunks_without_holding_them(own_org: Org) -> None:
    org = own_org
    count = 50_000
    now = org.server.clock()
    with org.server.kp.store.transaction() as tx:
        tx.audit.extend(
            [
                AuditEvent(
                    id=new_id("evt"),
                    org_id=org.id,
                    actor=org.owner_key_id,
                    action="key.update",
                    target_type="key",
                    target_id=org.owner_key_id,
                    details={},
                    created_at=now,
                    changes={"description": {"before": "", "after": f"note {n}"}},
                )
                for n in range(count)
            ]
        )
    tracemalloc.start()
    try:
        chunks = lines = size = 0
        # A client of its own: the test clients read every response whole, to search it.
        with (
            httpx.Client(base_url=org.server.base_url, headers=org.api.http.headers) as client,
            client.stream(
                "GET",
                "/v1/audit-events/export",
                params={"action": "key.update", "format": "jsonl"},
            ) as response,
        ):
            assert response.status_code == 200
            for chunk in response.iter_raw():
                chunks += 1
                size += len(chunk)
                lines += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == count
    assert chunks > 50
    # The whole body passed through this process (server and client) yet its peak stayed a
    # fraction of it: neither side held the export.
    assert peak < size / 4, (peak, size)


def test_the_time_in_an_event_is_the_servers_clock(org: Org) -> None:
    before = org.server.clock()
    org.api.post("/v1/apps", json={"name": "timed"})
    [event] = _events(org, action="app.create")
    moment = datetime.fromisoformat(event["time"])
    assert moment.tzinfo is not None
    assert before <= moment.astimezone(UTC) <= org.server.clock()
