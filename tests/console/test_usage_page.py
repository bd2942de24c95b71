"""The console's usage charts: the usage page, the key's page and the app's page carry their
numbers as a JSON data block (drawn by static/usage.js with the vendored uPlot, no inline
script), and the same numbers as text and a table; the usage page adds its refusals by code
and the busiest keys, over the range and granularity the visitor picks.

What the browser draws from the data block is tested in test_browser_usage.py.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import httpx
import pytest
from test_signin import PASSWORD, Visitor, person

from keyplane.console.routes.usage import UsageChart
from keyplane.domain.tokens import mint_key
from keyplane.domain.usage import Granularity, UsagePoint, UsageRange, bucket_start

from conftest import Org, Server

T0 = datetime(2026, 11, 30, 10, tzinfo=UTC)
DATA_BLOCK = re.compile(r'<script type="application/json" id="usage-data">(.*?)</script>', re.S)
CHART_ASSETS = (
    '<script src="/console/static/vendor/uplot/uPlot.iife.min.js" defer></script>',
    '<script src="/console/static/usage.js" defer></script>',
    '<link rel="stylesheet" href="/console/static/vendor/uplot/uPlot.min.css">',
)


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def data_block(page: httpx.Response) -> dict[str, Any]:
    found = DATA_BLOCK.findall(page.text)
    assert len(found) == 1, "one chart, one data block"
    data: dict[str, Any] = json.loads(found[0])
    return data


def totals(data: dict[str, Any]) -> dict[str, int]:
    """Each series' total, checked against the sum of its counts."""
    for series in data["series"]:
        assert sum(series["counts"]) == series["total"]
        assert len(series["counts"]) == len(data["times"])
    return {series["outcome"]: series["total"] for series in data["series"]}


def once_counted(visitor: Visitor, url: str, done: Any) -> httpx.Response:
    """The page once ``done(page)``: counts reach the database a flush later, and a flush by
    the counter's own thread may still be writing when the test's own returns."""
    deadline = time.monotonic() + 5
    while True:
        page = visitor.get(url)
        assert page.status_code == 200, page.text
        if done(page) or time.monotonic() > deadline:
            return page
        time.sleep(0.05)


def has_no_inline_script(page: httpx.Response) -> bool:
    """Every <script> loads a file or is a JSON data block: the CSP runs nothing else."""
    tags = re.findall(r"<script\b[^>]*>", page.text)
    return all(" src=" in tag or 'type="application/json"' in tag for tag in tags)


def test_the_usage_page_carries_answers_by_outcome_refusals_by_code_and_the_busiest_key(
    server: Server, org: Org, owner: Visitor
) -> None:
    verifier = org.key_with("keys:verify")
    target = org.api.create_key(scopes=["apps:read"])
    for _ in range(3):
        verifier.verify(str(target["key"]), ["apps:read"])
    verifier.verify(str(target["key"]), ["apps:write"])
    verifier.verify(mint_key())
    server.kp.counter.flush()

    before = server.clock()
    page = once_counted(owner, "/console/usage", lambda p: str(target["id"]) in p.text)
    after = server.clock()

    data = data_block(page)
    assert data["granularity"] == "hour"
    assert data["step"] == 3600
    # The last day by hour: 24 buckets, the last one the current hour, in Unix seconds (UTC).
    times = [datetime.fromtimestamp(t, UTC) for t in data["times"]]
    assert len(times) == 24
    assert all(b - a == timedelta(hours=1) for a, b in pairwise(times))
    assert bucket_start(before, "hour") <= times[-1] <= bucket_start(after, "hour")
    counted = totals(data)
    # The org's own calls (creating keys, verifying) are VALID answers too: at least the 3.
    assert list(counted)[:1] == ["VALID"]
    assert counted["VALID"] >= 3
    assert {k: v for k, v in counted.items() if k != "VALID"} == {
        "NOT_FOUND": 1,
        "INSUFFICIENT_SCOPE": 1,
    }
    # The same numbers as text: refusals by code, the busiest keys, the chart's text alternative.
    refusals = page.text.split('id="refusals"')[1].split("</table>")[0]
    assert re.findall(r"<code>([A-Z_]+)</code></td><td>(\d+)</td>", refusals) == [
        ("NOT_FOUND", "1"),
        ("INSUFFICIENT_SCOPE", "1"),
    ]
    busiest = page.text.split('id="top-keys"')[1].split("</table>")[0]
    assert f"<td><code>{target['id']}</code></td><td>—</td><td>4</td><td>1</td>" in busiest
    assert re.search(r'aria-label="Answers per hour by outcome: [\d,]+ VALID, 1 ', page.text)
    assert all(asset in page.text for asset in CHART_ASSETS)
    assert has_no_inline_script(page)
    assert '<a href="/console/usage" aria-current="page">Usage</a>' in page.text


@pytest.mark.parametrize(
    ("query", "granularity", "buckets", "step"),
    [
        ("", "hour", 24, 3600),
        ("?range=1h&granularity=minute", "minute", 60, 60),
        ("?range=24h&granularity=minute", "minute", 1440, 60),
        ("?range=7d&granularity=hour", "hour", 168, 3600),
        ("?range=30d&granularity=day", "day", 30, 86400),
        ("?range=1h&granularity=day", "day", 1, 86400),
    ],
)
def test_the_range_and_the_granularity_choose_the_buckets(
    server: Server,
    org: Org,
    owner: Visitor,
    query: str,
    granularity: Granularity,
    buckets: int,
    step: int,
) -> None:
    org.key_with("keys:verify").verify(mint_key())  # something to chart in every range
    server.kp.counter.flush()

    before = server.clock()
    page = once_counted(owner, f"/console/usage{query}", lambda p: DATA_BLOCK.search(p.text))
    after = server.clock()

    data = data_block(page)
    assert (data["granularity"], len(data["times"]), data["step"]) == (granularity, buckets, step)
    last = datetime.fromtimestamp(data["times"][-1], UTC)  # the current bucket
    assert bucket_start(before, granularity) <= last <= bucket_start(after, granularity)
    assert f'<option value="{granularity}" selected>' in page.text


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "?range=7d&granularity=minute",
            "a minute series spans at most 1 day; ask for a shorter range or a coarser granularity",
        ),
        ("?range=90d&granularity=hour", "an hour series spans at most 62 days"),
        ("?range=forever", "range must be one of 1h, 24h, 7d, 30d, 90d"),
        ("?granularity=second", "granularity must be one of minute, hour, day"),
    ],
)
def test_a_range_the_granularity_cannot_cover_is_a_422_that_says_why(
    owner: Visitor, query: str, message: str
) -> None:
    page = owner.get(f"/console/usage{query}")

    assert page.status_code == 422
    assert message in page.text.split('id="filter-errors"')[1].split("</ul>")[0]
    assert not DATA_BLOCK.search(page.text)
    assert CHART_ASSETS[0] not in page.text


def test_an_apps_page_charts_the_usage_of_its_keys(
    server: Server, org: Org, owner: Visitor
) -> None:
    app = org.api.post("/v1/apps", json={"name": f"charted {mint_key()[-6:]}"}).json()
    made = org.api.create_key(app_id=app["id"])
    org.api.as_key(str(made["key"])).get("/v1/apps")
    server.kp.counter.flush()

    page = once_counted(owner, f"/console/apps/{app['id']}", lambda p: DATA_BLOCK.search(p.text))

    assert "Usage of its keys, last day" in page.text
    assert totals(data_block(page)) == {"VALID": 1}
    assert 'aria-label="Answers per hour by outcome: 1 VALID"' in page.text
    assert all(asset in page.text for asset in CHART_ASSETS)
    assert has_no_inline_script(page)


def test_a_keys_page_charts_its_usage_only_for_those_who_may_read_analytics(
    server: Server, org: Org, owner: Visitor
) -> None:
    made = org.api.create_key(scopes=["apps:read"])
    caller = org.api.as_key(str(made["key"]))
    caller.get("/v1/apps")
    caller.get("/v1/apps")
    org.key_with("keys:verify").verify(str(made["key"]), ["apps:write"])  # INSUFFICIENT_SCOPE
    server.kp.counter.flush()
    url = f"/console/keys/{made['id']}/edit"

    page = once_counted(
        owner, url, lambda p: DATA_BLOCK.search(p.text) and sum(totals(data_block(p)).values()) == 3
    )

    assert "Usage, last day" in page.text
    data = data_block(page)
    assert totals(data) == {"VALID": 2, "INSUFFICIENT_SCOPE": 1}
    # The table beside the chart: the one hour with answers, a column per outcome.
    table = page.text.split('class="usage-numbers"')[1].split("</table>")[0]
    assert re.findall(r"<th scope=\"col\">([A-Za-z_ ()]+)</th>", table) == [
        "Hour (UTC)",
        "VALID",
        "INSUFFICIENT_SCOPE",
        "Total",
    ]
    assert re.findall(r"</time></th><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>", table) == [
        ("2", "1", "3")
    ]

    developer = Visitor(server)  # edits keys, reads no analytics
    try:
        assert developer.sign_in(person(org, "developer"), PASSWORD).status_code == 303
        other = developer.get(url)
        assert other.status_code == 200
        assert "Usage, last day" not in other.text
        assert not DATA_BLOCK.search(other.text)
        assert CHART_ASSETS[0] not in other.text
    finally:
        developer.close()


def test_a_key_without_answers_reads_so_and_loads_no_chart(org: Org, owner: Visitor) -> None:
    made = org.api.create_key()

    page = owner.get(f"/console/keys/{made['id']}/edit")

    assert "No verifications or calls with this key in the last day." in page.text
    assert not DATA_BLOCK.search(page.text)
    assert not any(asset in page.text for asset in CHART_ASSETS)


def chart(*counts: dict[str, int]) -> UsageChart:
    span = UsageRange(T0, T0 + timedelta(hours=len(counts)), "hour")
    return UsageChart.of(
        span, [UsagePoint(start, c) for start, c in zip(span.starts(), counts, strict=True)]
    )


def test_outcomes_keep_the_codes_order_and_unknown_ones_follow_alphabetically() -> None:
    made = chart(
        {"RATE_LIMITED": 1, "INSUFFICIENT_SCOPE": 2, "B_FUTURE_CODE": 1},
        {"A_FUTURE_CODE": 1},
        {"VALID": 5, "EXPIRED": 0, "IP_FORBIDDEN": 1, "NOT_FOUND": 3},
    )

    assert [s.outcome for s in made.series] == [
        "VALID",
        "NOT_FOUND",
        "IP_FORBIDDEN",
        "INSUFFICIENT_SCOPE",
        "RATE_LIMITED",
        "A_FUTURE_CODE",
        "B_FUTURE_CODE",
    ]  # in CODES' order, then the unknown alphabetically; EXPIRED never happened: no series
    assert made.series[0].counts == [0, 0, 5]
    assert made.total == 14


def test_a_charts_table_rows_are_the_buckets_with_answers_and_its_summary_the_totals() -> None:
    made = chart({"INSUFFICIENT_SCOPE": 1, "VALID": 3}, {}, {"VALID": 2000})

    assert made.rows() == [
        (T0, [3, 1], 4),
        (T0 + timedelta(hours=2), [2000, 0], 2000),
    ]
    assert made.summary() == "2,003 VALID, 1 INSUFFICIENT_SCOPE"


def test_the_data_block_holds_unix_seconds_the_step_and_a_series_per_outcome() -> None:
    made = chart({"VALID": 1}, {"NOT_FOUND": 2})

    assert made.data() == {
        "granularity": "hour",
        "step": 3600,
        "times": [int(T0.timestamp()), int(T0.timestamp()) + 3600],
        "series": [
            {"outcome": "VALID", "counts": [1, 0], "total": 1},
            {"outcome": "NOT_FOUND", "counts": [0, 2], "total": 2},
        ],
    }


def test_a_chart_of_nothing_has_no_series() -> None:
    made = chart({}, {})

    assert (made.series, made.total, made.rows(), made.summary()) == ([], 0, [], "")
