"""The audit log page in a real browser: filtering by an action prefix from the form, and
following an app's link to its own events."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_an_owner_reads_the_audit_log_filtered_to_app_events(
    page: Page, setup: ConsoleSetup
) -> None:
    app = setup.org.api.post("/v1/apps", json={"name": "audited-billing"}).json()
    setup.org.api.patch(f"/v1/apps/{app['id']}", json={"description": "Invoices"})
    sign_in(page, setup.person("owner"))
    page.get_by_role("link", name="Audit log").click()
    filters = page.locator("form#audit-filters")
    filters.get_by_label("Action").fill("app.update")
    filters.get_by_label("Target ID").fill(app["id"])
    filters.get_by_role("button", name="Filter").click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("description: “” → “Invoices”")
    screenshot(page, "console-audit")


def test_an_apps_page_links_to_its_events(page: Page, setup: ConsoleSetup) -> None:
    app = setup.org.api.post("/v1/apps", json={"name": "audited-search"}).json()
    sign_in(page, setup.person("owner"))
    page.goto(f"/console/apps/{app['id']}")
    page.get_by_role("link", name="Audit events").click()
    rows = page.locator("#audit-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("app.create")
