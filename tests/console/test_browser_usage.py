"""Usage charts in a real browser: a key of an app is verified, then its page draws the chart
with the vendored uPlot (bars stacked by outcome on a canvas, a legend of totals, the hovered
hour's counts), the app's page draws its own, and the usage page its overview. No script
error and no Content-Security-Policy violation on the way."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from keyplane.domain.tokens import mint_key

from conftest import Api
from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser

# For each outcome's colour (console.css), the pixels of the canvas that have it exactly
# (bars are solid fills: their insides match to the byte) and the rows they span.
PIXELS = """plot => {
  const canvas = plot.querySelector("canvas");
  const css = getComputedStyle(document.documentElement);
  const { width, height } = canvas;
  const pixels = canvas.getContext("2d").getImageData(0, 0, width, height).data;
  const found = {};
  for (const outcome of ["VALID", "INSUFFICIENT_SCOPE", "NOT_FOUND"]) {
    const hex = css.getPropertyValue(`--outcome-${outcome.toLowerCase()}`).trim();
    const [r, g, b] = [1, 3, 5].map(i => parseInt(hex.slice(i, i + 2), 16));
    let count = 0, top = height, bottom = -1;
    for (let i = 0; i < pixels.length; i += 4) {
      if (pixels[i] === r && pixels[i + 1] === g && pixels[i + 2] === b && pixels[i + 3] === 255) {
        const y = Math.floor(i / 4 / width);
        count++; top = Math.min(top, y); bottom = Math.max(bottom, y);
      }
    }
    found[outcome] = { count, top, bottom };
  }
  return found;
}"""
# The legend's rows as [label, value]: the time row first, then one per outcome.
LEGEND = """plot => [...plot.querySelectorAll(".u-legend tr.u-series")].map(
  row => [row.querySelector(".u-label").textContent, row.querySelector(".u-value").textContent]
)"""


def counted(api: Api, key_id: str, expected: dict[str, int]) -> None:
    """Waits until the analytics API reads ``expected`` for the key: counts reach the
    database a flush later, and the counter's own thread may be flushing as the test's does."""
    deadline = time.monotonic() + 5
    while True:
        rows = api.get("/v1/analytics/usage", params={"key_id": key_id}).json()["data"]
        totals: dict[str, int] = {}
        for row in rows:
            for outcome, n in row["counts"].items():
                totals[outcome] = totals.get(outcome, 0) + n
        if totals == expected:
            return
        assert time.monotonic() < deadline, totals
        time.sleep(0.05)


def drawn(plot: Locator) -> Any:
    expect(plot).to_have_attribute("data-drawn", "yes")
    expect(plot.locator("canvas")).to_have_count(1)
    return plot.evaluate(PIXELS)


def test_a_keys_page_draws_its_usage_by_outcome_with_totals_and_the_hovered_hours_counts(
    page: Page, setup: ConsoleSetup
) -> None:
    problems: list[str] = []

    def note(message: ConsoleMessage) -> None:
        # A CSP violation is reported as an error. The browser's own request for a
        # /favicon.ico the console does not have is none of the chart's business.
        if message.type == "error" and not message.location["url"].endswith("/favicon.ico"):
            problems.append(message.text)

    page.on("console", note)
    page.on("pageerror", lambda error: problems.append(str(error)))
    api = setup.org.api
    verifier = setup.org.key_with("keys:verify")
    app = api.post("/v1/apps", json={"name": "billing", "scopes": ["apps:read"]}).json()
    made = api.create_key(name="billing worker", app_id=app["id"])
    key = str(made["key"])
    for _ in range(6):
        assert verifier.verify(key, ["apps:read"])["code"] == "VALID"
    for _ in range(2):
        assert verifier.verify(key, ["apps:write"])["code"] == "INSUFFICIENT_SCOPE"
    verifier.verify(mint_key())  # counts in the organization, against no key
    setup.server.kp.counter.flush()
    counted(api, str(made["id"]), {"VALID": 6, "INSUFFICIENT_SCOPE": 2})

    sign_in(page, setup.person("admin"))
    page.goto(f"/console/keys/{made['id']}/edit")
    plot = page.get_by_role(
        "img", name="Answers per hour by outcome: 6 VALID, 2 INSUFFICIENT_SCOPE"
    )

    pixels = drawn(plot)
    valid, refused = pixels["VALID"], pixels["INSUFFICIENT_SCOPE"]
    assert pixels["NOT_FOUND"]["count"] == 0  # not this key's
    # One bar, 6 VALID under 2 INSUFFICIENT_SCOPE: the same width, three times the height.
    assert valid["count"] > 0
    assert 2.5 < valid["count"] / refused["count"] < 3.5
    assert refused["bottom"] < valid["top"]
    # The legend: each outcome's total while the pointer is away from the chart...
    assert plot.evaluate(LEGEND) == [
        ["Time (UTC)", "total"],
        ["VALID", "6"],
        ["INSUFFICIENT_SCOPE", "2"],
    ]
    # ...and the hovered hour's counts over the bar (the hour with answers in the data block).
    data = page.evaluate("() => JSON.parse(document.getElementById('usage-data').textContent)")
    hour = next(i for i, n in enumerate(data["series"][0]["counts"]) if n)
    over = plot.locator(".u-over")
    box = over.bounding_box()
    assert box is not None
    over.hover(position={"x": box["width"] * (hour + 0.4) / len(data["times"]), "y": 5})
    start = datetime.fromtimestamp(data["times"][hour], UTC).strftime("%Y-%m-%d %H:%M")
    expect(plot.locator(".u-legend .u-value").first).to_have_text(start)  # on the next frame
    assert plot.evaluate(LEGEND) == [
        ["Time (UTC)", start],
        ["VALID", "6"],
        ["INSUFFICIENT_SCOPE", "2"],
    ]
    screenshot(page, "console-usage-key")

    # Hiding VALID in the legend stacks INSUFFICIENT_SCOPE on the axis in its place.
    page.mouse.move(0, 0)
    plot.locator(".u-legend tr.u-series", has_text="VALID").locator("th").click()
    again = plot.evaluate(PIXELS)
    assert again["VALID"]["count"] == 0
    assert again["INSUFFICIENT_SCOPE"]["bottom"] == valid["bottom"]
    # The same numbers without the chart, for screen readers: a table, one keypress away.
    numbers = page.locator(".usage-numbers")
    numbers.locator("summary").focus()
    page.keyboard.press("Enter")
    expect(numbers.get_by_role("table")).to_be_visible()
    expect(numbers.get_by_role("row", name=f"{start} 6 2 8")).to_be_visible()

    page.goto(f"/console/apps/{app['id']}")
    app_pixels = drawn(page.get_by_role("img", name="Answers per hour by outcome"))
    assert app_pixels["VALID"]["count"] > 0
    assert app_pixels["INSUFFICIENT_SCOPE"]["count"] > 0

    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    overview = drawn(page.get_by_role("img", name="Answers per hour by outcome"))
    assert all(overview[outcome]["count"] > 0 for outcome in overview)
    expect(page.locator("#refusals").get_by_role("cell", name="NOT_FOUND")).to_be_visible()
    expect(page.locator("#top-keys").get_by_role("cell", name=str(made["id"]))).to_be_visible()
    page.get_by_label("Range").select_option("7d")
    page.get_by_role("button", name="Show").click()
    expect(page).to_have_url(re.compile(r"/console/usage\?range=7d&granularity=hour$"))
    drawn(page.get_by_role("img", name="Answers per hour by outcome"))
    screenshot(page, "console-usage")
    assert problems == []
