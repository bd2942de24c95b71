"""Usage in a real browser: an app's key is verified; the app's page, the key's page and the
Usage page chart the answers by outcome."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from keyplane.domain.tokens import mint_key

from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_usage_is_charted_on_the_apps_page_the_keys_page_and_the_usage_page(
    page: Page, setup: ConsoleSetup
) -> None:
    api = setup.org.api
    verifier = setup.org.key_with("keys:verify")
    app = api.post("/v1/apps", json={"name": "billing", "scopes": ["apps:read"]}).json()
    made = api.create_key(name="billing worker", app_id=app["id"])
    key = str(made["key"])
    for _ in range(6):
        assert verifier.verify(key, ["apps:read"])["code"] == "VALID"
    for _ in range(2):
        assert verifier.verify(key, ["apps:write"])["code"] == "INSUFFICIENT_SCOPE"
    verifier.verify(mint_key())
    setup.server.kp.counter.flush()

    sign_in(page, setup.person("admin"))
    page.goto(f"/console/apps/{app['id']}")
    chart = page.get_by_role("img", name="Answers per hour by outcome")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.outcome-valid")).to_have_count(1)
    expect(chart.locator("rect.outcome-insufficient_scope")).to_have_count(1)

    page.goto(f"/console/keys/{made['id']}/edit")
    chart = page.get_by_role("img", name="Answers per hour by outcome")
    expect(chart).to_be_visible()
    expect(chart.locator("rect.outcome-valid")).to_have_count(1)

    page.get_by_role("link", name="Usage").click()
    expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible()
    expect(page.get_by_role("img", name="Answers per hour by outcome")).to_be_visible()
    expect(page.get_by_role("cell", name="NOT_FOUND")).to_be_visible()
    screenshot(page, "console-usage")
