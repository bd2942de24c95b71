"""The catalogue pages in a real browser: custom resources and profiles.

Each test checks what the page shows and, through the REST API, what the server stored.
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import Page, expect

from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser


# ---- resources ----------------------------------------------------------------------------


def test_an_admin_adds_a_resource_and_the_key_grid_offers_its_actions(
    page: Page, setup: ConsoleSetup
) -> None:
    sign_in(page, setup.person("admin"))
    page.get_by_role("link", name="Resources").click()
    expect(page.get_by_role("heading", name="Resources", exact=True)).to_be_visible()
    page.get_by_label("Name", exact=True).fill("tools")
    page.get_by_label("Title").fill("Deploy tools")
    page.get_by_label("Actions").fill("deploy, undeploy")
    page.get_by_role("button", name="Add resource").click()

    expect(page.get_by_role("status")).to_contain_text("The resource was added")
    row = page.locator("#resources-table tr[data-resource=tools]")
    expect(row).to_contain_text("Deploy tools")
    expect(row.locator("code")).to_have_text(["tools", "deploy", "undeploy"])
    expect(row.locator(".badge")).to_have_text("CUSTOM")
    stored = setup.org.api.get("/v1/resources/tools").json()
    assert stored["actions"] == ["deploy", "undeploy"]
    assert stored["builtin"] is False
    screenshot(page, "resources")

    page.get_by_role("link", name="API keys").click()
    page.get_by_role("link", name="+ Create API key").click()
    grid_row = page.locator("#permissions tr[data-resource=tools]")
    expect(grid_row.get_by_role("rowheader")).to_contain_text("Deploy tools")
    for action in ("Deploy", "Undeploy"):
        expect(grid_row.get_by_label(action, exact=True)).to_be_enabled()
    expect(grid_row.locator("input[data-action]")).to_have_count(2)


def test_a_built_in_resource_offers_no_delete_button(page: Page, setup: ConsoleSetup) -> None:
    sign_in(page, setup.person("admin"))
    page.goto("/console/resources")
    row = page.locator("#resources-table tr[data-resource=api_keys]")
    expect(row.locator(".badge")).to_have_text("BUILT-IN")
    expect(row.get_by_role("button")).to_have_count(0)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Tools", "Must start with a lowercase letter and hold only a-z, 0-9 and _"),
        ("9tools", "Must start with a lowercase letter"),
        ("api_keys", "A resource named 'api_keys' already exists."),
    ],
    ids=["uppercase", "leading-digit", "built-in"],
)
def test_an_invalid_resource_name_is_explained_next_to_the_name_field(
    page: Page, setup: ConsoleSetup, name: str, message: str
) -> None:
    sign_in(page, setup.person("admin"))
    page.goto("/console/resources")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Actions").fill("deploy, undeploy")
    page.get_by_role("button", name="Add resource").click()

    field = page.get_by_label("Name", exact=True)
    expect(page.locator("#name-error")).to_contain_text(message)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_attribute("aria-describedby", "name-hint name-error")
    expect(field).to_have_value(name)
    expect(page.get_by_label("Actions")).to_have_value("deploy, undeploy")
    names = [r["name"] for r in setup.org.api.get("/v1/resources").json()["data"]]
    assert names.count(name) == (1 if name == "api_keys" else 0)


def test_a_resource_still_granted_to_a_key_cannot_be_deleted(
    page: Page, setup: ConsoleSetup
) -> None:
    api = setup.org.api
    assert api.post("/v1/resources", json={"name": "tools", "actions": ["deploy"]}).is_success
    key = api.create_key(name="deployer", scopes=["tools:deploy"])
    sign_in(page, setup.person("admin"))
    page.goto("/console/resources")
    page.get_by_role("button", name="Delete tools").click()
    dialog = page.get_by_role("dialog", name="Delete resource “tools”?")
    expect(dialog).to_contain_text("cannot be deleted while any key or app is granted")
    dialog.get_by_role("button", name="Delete").click()

    error = page.locator("#delete-error")
    expect(error).to_contain_text("Could not delete tools")
    expect(error).to_contain_text(f"still granted to key {key['id']}")
    expect(page.locator("#resources-table tr[data-resource=tools]")).to_have_count(1)
    assert api.get("/v1/resources/tools").status_code == 200


def test_an_unused_resource_is_deleted_after_confirmation(page: Page, setup: ConsoleSetup) -> None:
    api = setup.org.api
    assert api.post("/v1/resources", json={"name": "tools", "actions": ["deploy"]}).is_success
    sign_in(page, setup.person("admin"))
    page.goto("/console/resources")
    row = page.locator("#resources-table tr[data-resource=tools]")
    row.get_by_role("button", name="Delete tools").click()
    dialog = page.get_by_role("dialog", name="Delete resource “tools”?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    assert api.get("/v1/resources/tools").status_code == 200

    row.get_by_role("button", name="Delete tools").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_have_text("The resource was deleted.")
    expect(row).to_have_count(0)
    assert api.get("/v1/resources/tools").status_code == 404


# ---- profiles -----------------------------------------------------------------------------


def _profile(setup: ConsoleSetup, name: str, settings: dict[str, object]) -> dict[str, object]:
    response = setup.org.api.post("/v1/profiles", json={"name": name, "settings": settings})
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


def test_an_admin_creates_a_profile_with_json_settings(page: Page, setup: ConsoleSetup) -> None:
    sign_in(page, setup.person("admin"))
    page.get_by_role("link", name="Profiles").click()
    page.get_by_role("link", name="+ Create profile").click()
    page.get_by_label("Name", exact=True).fill("gold")
    page.get_by_label("Description").fill("the paying tier")
    page.get_by_label("Settings (JSON object)").fill('{"tier": "gold", "requests_per_minute": 600}')
    page.get_by_role("button", name="Create profile").click()

    expect(page.get_by_role("status")).to_contain_text("The profile was created")
    [stored] = setup.org.api.get("/v1/profiles").json()["data"]
    assert stored["name"] == "gold"
    assert stored["description"] == "the paying tier"
    assert stored["settings"] == {"tier": "gold", "requests_per_minute": 600}
    row = page.locator(f"tr[data-profile-id='{stored['id']}']")
    expect(row.get_by_role("link", name="gold", exact=True)).to_be_visible()
    expect(row.locator(".settings-preview")).to_have_text(
        '{"tier": "gold", "requests_per_minute": 600}'
    )
    screenshot(page, "profiles")


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ('{"tier": gold}', "Settings must be a JSON object: Expecting value at line 1, column 10."),
        ('["gold"]', 'Settings must be a JSON object such as {"tier": "gold"}, not a list.'),
        ('{"rate": NaN}', "Settings must be a JSON object: NaN is not a JSON value."),
    ],
    ids=["syntax-error", "a-list", "NaN"],
)
def test_settings_that_are_not_a_json_object_are_explained_and_kept(
    page: Page, setup: ConsoleSetup, typed: str, message: str
) -> None:
    sign_in(page, setup.person("admin"))
    page.goto("/console/profiles/new")
    page.get_by_label("Name", exact=True).fill("broken")
    page.get_by_label("Settings (JSON object)").fill(typed)
    page.get_by_role("button", name="Create profile").click()

    textarea = page.get_by_label("Settings (JSON object)")
    expect(page.locator("#settings-error")).to_have_text(message)
    expect(textarea).to_have_attribute("aria-invalid", "true")
    expect(textarea).to_have_attribute("aria-describedby", "settings-hint settings-error")
    expect(textarea).to_have_value(typed)
    expect(page.get_by_label("Name", exact=True)).to_have_value("broken")
    assert setup.org.api.get("/v1/profiles").json()["data"] == []


def test_edited_settings_reach_the_keys_carrying_the_profile(
    page: Page, setup: ConsoleSetup
) -> None:
    profile = _profile(setup, "silver", {"tier": "silver"})
    key = str(setup.org.api.create_key(name="customer", profile_id=profile["id"])["key"])
    verifier = setup.org.key_with("keys:verify")
    before = verifier.verify(key)
    assert before["profile"] == {
        "id": profile["id"],
        "name": "silver",
        "settings": {"tier": "silver"},
    }

    sign_in(page, setup.person("admin"))
    page.goto("/console/profiles")
    page.get_by_role("link", name="Edit silver").click()
    textarea = page.get_by_label("Settings (JSON object)")
    assert json.loads(textarea.input_value()) == {"tier": "silver"}
    textarea.fill('{"tier": "gold", "requests_per_minute": 600}')
    page.get_by_role("button", name="Save profile").click()

    expect(page.get_by_role("status")).to_contain_text("The profile was saved")
    after = verifier.verify(key)
    assert after["code"] == "VALID"
    assert after["profile"] == {
        "id": profile["id"],
        "name": "silver",
        "settings": {"tier": "gold", "requests_per_minute": 600},
    }


def test_a_profile_attached_to_a_key_cannot_be_deleted(page: Page, setup: ConsoleSetup) -> None:
    profile = _profile(setup, "gold", {"tier": "gold"})
    key = setup.org.api.create_key(name="customer", profile_id=profile["id"])
    sign_in(page, setup.person("admin"))
    page.goto("/console/profiles")
    page.get_by_role("button", name="Delete gold").click()
    dialog = page.get_by_role("dialog", name="Delete profile “gold”?")
    dialog.get_by_role("button", name="Delete").click()

    error = page.locator("#delete-error")
    expect(error).to_contain_text(f"Profile 'gold' is attached to keys ({key['id']})")
    expect(error).to_contain_text("detach it from them before deleting it")
    expect(page.locator(f"tr[data-profile-id='{profile['id']}']")).to_have_count(1)
    assert setup.org.api.get(f"/v1/profiles/{profile['id']}").status_code == 200
