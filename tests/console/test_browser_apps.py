"""Apps in a real browser: create one, generate keys, change its scopes, watch verification."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser


def _generate(page: Page, setup: ConsoleSetup, name: str) -> str:
    page.get_by_role("tab", name="API keys").click()
    page.get_by_label("Key name").fill(name)
    page.get_by_role("button", name="Generate key").click()
    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Copy secret").click()
    secret = str(page.evaluate("navigator.clipboard.readText()"))
    setup.created.add(secret)
    dialog.get_by_role("button", name="I have saved it — close").click()
    expect(page.locator("#show-once")).to_have_count(0)  # removed from the page, not hidden
    assert secret not in page.content()
    return secret


def test_an_app_s_scope_change_governs_all_its_keys(page: Page, setup: ConsoleSetup) -> None:
    verifier = setup.org.key_with("keys:verify")
    sign_in(page, setup.person("admin"))
    page.get_by_role("link", name="Apps").click()
    page.get_by_role("link", name="Create app").click()
    page.get_by_label("Name", exact=True).fill("reporting")
    page.locator("tr[data-resource=api_keys]").get_by_label("Read").check()
    page.get_by_role("button", name="Create app").click()
    expect(page.get_by_role("heading", name="reporting")).to_be_visible()

    first = _generate(page, setup, "nightly export")
    second = _generate(page, setup, "dashboard")
    page.get_by_role("tab", name="API keys").click()
    expect(page.locator("#app-keys-table tbody tr")).to_have_count(2)
    screenshot(page, "app")
    for key in (first, second):
        assert verifier.verify(key, ["api_keys:read"])["code"] == "VALID"

    page.get_by_role("tab", name="Scopes").click()
    grid = page.locator("#permissions")
    grid.locator("tr[data-resource=api_keys]").get_by_label("Read").uncheck()
    grid.locator("tr[data-resource=apps]").get_by_label("Read").check()
    page.get_by_role("button", name="Save scopes").click()
    expect(page.get_by_text("apps:read").first).to_be_visible()

    for key in (first, second):
        assert verifier.verify(key, ["api_keys:read"])["code"] == "INSUFFICIENT_SCOPE"
        assert verifier.verify(key, ["apps:read"])["code"] == "VALID"


def test_deleting_an_app_asks_first_and_takes_its_keys(page: Page, setup: ConsoleSetup) -> None:
    app = setup.org.api.post("/v1/apps", json={"name": "legacy", "scopes": ["apps:read"]}).json()
    key = str(setup.org.api.create_key(name="old", app_id=app["id"])["key"])
    sign_in(page, setup.person("admin"))
    page.goto(f"/console/apps/{app['id']}")
    page.get_by_role("button", name="Delete app").click()
    dialog = page.locator("dialog#delete-app")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_be_visible()
    assert setup.org.api.verify(key)["code"] == "NOT_FOUND"
