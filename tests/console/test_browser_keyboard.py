"""The console with the keyboard alone: Tab to move, Enter and Space to act, Escape to leave
a dialog; and a label for every form control, which is what a screen reader announces.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import Locator, Page, expect

from support.browser import ConsoleSetup, sign_in

pytestmark = pytest.mark.browser

TAB_LIMIT = 80  # more stops than any console page has before its last control


def _tab_to(page: Page, target: Locator) -> None:
    """Presses Tab, as a keyboard user would, until ``target`` has the focus."""
    for _ in range(TAB_LIMIT):
        page.keyboard.press("Tab")
        if target.evaluate("e => e === document.activeElement"):
            return
    raise AssertionError(f"{TAB_LIMIT} presses of Tab never reached {target}")


def _holds_focus(dialog: Locator) -> bool:
    return bool(dialog.evaluate("d => d.contains(document.activeElement)"))


def test_the_delete_dialog_opens_takes_focus_and_escape_cancels_it(
    page: Page, setup: ConsoleSetup
) -> None:
    created = setup.org.api.create_key(name="precious")
    sign_in(page, setup.person("developer"))
    delete = page.get_by_role("button", name="Delete precious")
    _tab_to(page, delete)
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog", name="Delete “precious”?")
    expect(dialog).to_be_visible()
    assert _holds_focus(dialog)
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete).to_be_focused()  # back where the user was

    expect(page.locator(f"tr[data-key-id='{created['id']}']")).to_have_count(1)
    assert setup.org.api.get(f"/v1/keys/{created['id']}").status_code == 200
    assert setup.org.api.verify(str(created["key"]))["code"] == "VALID"


def test_a_key_is_created_with_the_keyboard_alone_and_its_secret_leaves_on_escape(
    page: Page, setup: ConsoleSetup
) -> None:
    verifier = setup.org.key_with("keys:verify")
    sign_in(page, setup.person("developer"))
    _tab_to(page, page.get_by_role("link", name="+ Create API key"))
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Create API key")).to_be_visible()

    _tab_to(page, page.get_by_label("Name", exact=True))
    page.keyboard.type("typed service")
    _tab_to(page, page.get_by_label("Environment"))
    page.keyboard.press("ArrowDown")  # Live -> Test
    read = page.locator("tr[data-resource=api_keys]").get_by_label("Read")
    _tab_to(page, read)
    page.keyboard.press("Space")
    expect(read).to_be_checked()
    expect(page.locator("#scopes-hint")).to_contain_text("exactly the permissions checked")
    _tab_to(page, page.get_by_role("button", name="Create API key"))
    page.keyboard.press("Enter")

    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    assert _holds_focus(dialog)
    secret = page.locator("#client-secret").input_value()
    setup.created.add(secret)
    assert secret.startswith("kp_test_")
    page.keyboard.press("Escape")

    expect(page.locator("#show-once")).to_have_count(0)  # removed from the page, not hidden
    assert secret not in page.content()
    verdict = verifier.verify(secret, ["api_keys:read"])
    assert verdict["code"] == "VALID"
    assert verdict["scopes"] == ["api_keys:read"]
    stored = setup.org.api.get(f"/v1/keys/{verdict['key_id']}").json()
    assert (stored["name"], stored["environment"]) == ("typed service", "test")


@pytest.mark.parametrize(
    "path",
    [
        "/console/keys",
        "/console/keys/new",
        "/console/keys/{key}/edit",
        "/console/apps/new",
        "/console/apps/{app}?tab=scopes",
        "/console/apps/{app}?tab=keys",
        "/console/resources",
        "/console/profiles/new",
        "/console/profiles/{profile}/edit",
        "/console/users",
        "/console/settings",
    ],
)
def test_every_form_control_has_an_accessible_label(
    page: Page, setup: ConsoleSetup, path: str
) -> None:
    api = setup.org.api
    api.post("/v1/resources", json={"name": "tools", "actions": ["deploy"]})
    ids = {
        "app": api.post("/v1/apps", json={"name": "billing"}).json()["id"],
        "profile": api.post("/v1/profiles", json={"name": "gold"}).json()["id"],
        "key": api.create_key(name="labelled")["id"],
    }
    sign_in(page, setup.person("owner"))
    page.goto(path.format(**ids))
    controls = page.locator("main").locator("input:not([type=hidden]), select, textarea")
    assert controls.count() > 0
    unlabelled = [
        control.evaluate("e => e.outerHTML")
        for control in controls.all()
        if not control.evaluate(
            """e => [...e.labels].some(l => l.textContent.trim())
                 || (e.getAttribute("aria-label") || "").trim() !== ""
                 || !!e.getAttribute("aria-labelledby")"""
        )
    ]
    assert unlabelled == []
