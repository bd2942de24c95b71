""" "Start from a preset" in a real browser: choosing a preset fills the permission grid,
changing the grid by hand lets go of the preset, and the key is made from the preset."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser

SCANNER = ["models:read", "models:write", "scanner:write"]


def test_a_preset_fills_the_grid_and_the_key_is_made_from_it(
    page: Page, setup: ConsoleSetup
) -> None:
    api = setup.org.api
    for name, actions in (("models", ["read", "write", "deploy"]), ("scanner", ["write"])):
        api.post("/v1/resources", json={"name": name, "actions": actions})
    made = api.post("/v1/presets", json={"name": "Model scanner CLI", "scopes": SCANNER}).json()
    sign_in(page, setup.person("admin"))
    page.goto("/console/keys/new")
    page.get_by_label("Name", exact=True).fill("scanner in CI")
    models = page.locator("tr[data-resource=models]")
    scanner = page.locator("tr[data-resource=scanner]")

    page.get_by_label("Start from a preset").select_option(label="Model scanner CLI")

    expect(models.get_by_label("Read")).to_be_checked()
    expect(models.get_by_label("Write")).to_be_checked()
    expect(models.get_by_label("Deploy")).not_to_be_checked()
    expect(scanner.get_by_label("Write")).to_be_checked()
    expect(page.locator("#scopes-hint")).to_contain_text("exactly the permissions checked")
    screenshot(page, "create-key-from-preset")

    # A change by hand: the grid is no longer the preset, and the select says so.
    models.get_by_label("Deploy").check()
    expect(page.get_by_label("Start from a preset")).to_have_value("")
    models.get_by_label("Deploy").uncheck()
    page.get_by_label("Start from a preset").select_option(label="Model scanner CLI")
    page.get_by_role("button", name="Create API key").click()

    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    setup.created.add(page.locator("#client-secret").input_value())
    key_id = page.locator("#client-id").input_value()
    assert api.get(f"/v1/keys/{key_id}").json()["scopes"] == SCANNER
    [event] = [
        e
        for e in api.get("/v1/audit-events?action=key.create").json()["data"]
        if e["target"]["id"] == key_id
    ]
    assert event["details"]["preset"] == {"id": made["id"], "name": "Model scanner CLI"}
