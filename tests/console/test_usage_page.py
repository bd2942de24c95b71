"""The console's usage page: the organization's answers of the last day drawn as an SVG
chart by outcome, the totals by outcome and the busiest keys, from the same counts as
/v1/analytics; and the chart's geometry."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from test_signin import PASSWORD, Visitor, person

from keyplane.console.charts import stacked_bars
from keyplane.domain.tokens import mint_key
from keyplane.domain.usage import UsagePoint

from conftest import Org, Server

T0 = datetime(2026, 11, 30, 10, tzinfo=UTC)


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def test_the_usage_page_charts_answers_by_outcome_and_lists_the_busiest_key(
    server: Server, org: Org, owner: Visitor
) -> None:
    verifier = org.key_with("keys:verify")
    target = org.api.create_key(scopes=["apps:read"])
    for _ in range(3):
        verifier.verify(str(target["key"]), ["apps:read"])
    verifier.verify(str(target["key"]), ["apps:write"])
    verifier.verify(mint_key())
    server.kp.counter.flush()

    deadline = time.monotonic() + 5
    while True:  # a flush by the counter's own thread may still be writing
        page = owner.get("/console/usage")
        assert page.status_code == 200, page.text
        if str(target["id"]) in page.text or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert '<svg class="usage-chart"' in page.text
    outcomes = set(re.findall(r'<rect class="outcome-([a-z_]+)"', page.text))
    assert {"valid", "insufficient_scope", "not_found"} <= outcomes
    assert f"<code>{target['id']}</code>" in page.text
    assert '<a href="/console/usage" aria-current="page">Usage</a>' in page.text


def test_an_apps_page_charts_the_usage_of_its_keys(
    server: Server, org: Org, owner: Visitor
) -> None:
    app = org.api.post("/v1/apps", json={"name": f"charted {mint_key()[-6:]}"}).json()
    made = org.api.create_key(app_id=app["id"])
    org.api.as_key(str(made["key"])).get("/v1/apps")
    server.kp.counter.flush()

    deadline = time.monotonic() + 5
    while True:
        page = owner.get(f"/console/apps/{app['id']}")
        assert page.status_code == 200, page.text
        if "usage-chart" in page.text or time.monotonic() > deadline:
            break
        time.sleep(0.05)

    assert "Usage of its keys, last day" in page.text
    assert re.search(r'<rect class="outcome-valid"[^>]*><title>[^<]*1 VALID</title>', page.text)


def test_a_keys_page_charts_its_usage_only_for_those_who_may_read_analytics(
    server: Server, org: Org, owner: Visitor
) -> None:
    made = org.api.create_key()
    org.api.as_key(str(made["key"])).get("/v1/apps")
    server.kp.counter.flush()
    url = f"/console/keys/{made['id']}/edit"

    deadline = time.monotonic() + 5
    while "usage-chart" not in (page := owner.get(url)).text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert page.status_code == 200
    assert "Usage, last day" in page.text
    assert re.search(r'<rect class="outcome-valid"[^>]*><title>[^<]*1 VALID</title>', page.text)

    developer = Visitor(server)  # edits keys, reads no analytics
    try:
        assert developer.sign_in(person(org, "developer"), PASSWORD).status_code == 303
        other = developer.get(url)
        assert other.status_code == 200
        assert "Usage, last day" not in other.text
    finally:
        developer.close()


def test_bars_stack_outcomes_bottom_up_scaled_to_the_busiest_point() -> None:
    chart = stacked_bars(
        [
            UsagePoint(T0, {"INSUFFICIENT_SCOPE": 1, "VALID": 3}),
            UsagePoint(T0, {}),
            UsagePoint(T0, {"VALID": 2}),
        ],
        width=300,
        height=100,
    )

    assert chart.peak == 4
    first, empty, last = chart.bars
    assert [(s.outcome, s.y, s.height) for s in first.segments] == [
        ("VALID", 25.0, 75.0),
        ("INSUFFICIENT_SCOPE", 0.0, 25.0),
    ]
    assert empty.segments == []
    assert [(s.y, s.height) for s in last.segments] == [(50.0, 50.0)]
    assert [bar.x for bar in chart.bars] == [0.0, 100.0, 200.0]


def test_a_chart_of_nothing_has_no_peak_and_no_segments() -> None:
    chart = stacked_bars([UsagePoint(T0, {})])

    assert chart.peak == 0
    assert chart.bars[0].segments == []
