"""The console in a real browser: signing in, and every key flow.

Playwright drives Debian's Chromium against a real keyplane server on loopback.
"""

from __future__ import annotations

from datetime import timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from support.browser import ConsoleSetup, screenshot, sign_in

pytestmark = pytest.mark.browser


def test_sign_in_wrong_password_and_sign_out(page: Page, setup: ConsoleSetup) -> None:
    person = setup.person("developer")
    page.goto("/console/keys")
    expect(page).to_have_url(f"{setup.base}/console/login?next=%2Fconsole%2Fkeys")
    page.get_by_label("Email").fill(person.email)
    page.get_by_label("Password").fill("not the password at all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text("The email or password is incorrect.")
    screenshot(page, "sign-in-error")

    sign_in(page, person)
    expect(page.get_by_role("heading", name="API keys")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    page.goto("/console/keys")
    expect(page).to_have_url(f"{setup.base}/console/login?next=%2Fconsole%2Fkeys")


def test_create_a_key_copy_the_secret_once_and_verify_with_it(
    page: Page, setup: ConsoleSetup
) -> None:
    sign_in(page, setup.person("admin"))
    page.get_by_role("link", name="+ Create API key").click()
    page.get_by_label("Name", exact=True).fill("billing service")
    page.get_by_label("Description").fill("reads keys, verifies callers")
    hint = page.locator("#scopes-hint")
    expect(hint).to_contain_text("full access")
    row = page.locator("tr[data-resource=api_keys]")
    row.get_by_label("Read").check()
    page.locator("tr[data-resource=keys]").get_by_label("Verify").check()
    expect(hint).to_contain_text("exactly the permissions checked")
    screenshot(page, "create-key")
    page.get_by_role("button", name="Create API key").click()

    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("only time the secret is shown")
    screenshot(page, "show-once")
    dialog.get_by_role("button", name="Copy secret").click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("kp_live_")
    client_id = page.locator("#client-id").input_value()
    setup.created.add(secret)  # for the search of the database and logs at the end

    dialog.get_by_role("button", name="I have saved it — close").click()
    expect(page.locator("#show-once")).to_have_count(0)  # removed from the page, not hidden
    assert secret not in page.content()
    page.reload()
    assert secret not in page.content()

    row = page.locator(f"tr[data-key-id='{client_id}']")
    expect(row.locator(".masked")).to_have_text(f"kp_live_…{secret[-4:]}")
    expect(row.locator(".badge")).to_have_text("ACTIVE")

    verdict = httpx.post(
        f"{setup.base}/v1/keys/verify",
        json={"key": secret, "scopes": ["api_keys:read"]},
        headers={"Authorization": f"Bearer {secret}"},
    ).json()
    assert verdict["code"] == "VALID"
    assert verdict["key_id"] == client_id
    assert verdict["scopes"] == ["api_keys:read", "keys:verify"]
    screenshot(page, "keys")


def test_disable_and_re_enable_a_key(page: Page, setup: ConsoleSetup) -> None:
    created = setup.org.api.create_key(name="toggle me", scopes=["apps:read"])
    sign_in(page, setup.person("developer"))
    row = page.locator(f"tr[data-key-id='{created['id']}']")
    row.get_by_role("link", name="Edit toggle me").click()
    expect(page.get_by_text("Name and permissions cannot change")).to_be_visible()
    page.get_by_label("Inactive (temporarily disabled)").check()
    page.get_by_role("button", name="Save changes").click()
    expect(row.locator(".badge")).to_have_text("INACTIVE")
    assert setup.org.api.verify(str(created["key"]))["code"] == "DISABLED"

    row.get_by_role("link", name="Edit toggle me").click()
    page.get_by_label("Active", exact=True).check()
    page.get_by_role("button", name="Save changes").click()
    expect(row.locator(".badge")).to_have_text("ACTIVE")
    assert setup.org.api.verify(str(created["key"]))["code"] == "VALID"


def test_delete_asks_for_confirmation_then_the_key_stops_working(
    page: Page, setup: ConsoleSetup
) -> None:
    created = setup.org.api.create_key(name="doomed")
    sign_in(page, setup.person("developer"))
    row = page.locator(f"tr[data-key-id='{created['id']}']")
    row.get_by_role("button", name="Delete doomed").click()
    dialog = page.get_by_role("dialog", name="Delete “doomed”?")
    expect(dialog).to_contain_text("stops working immediately")
    dialog.get_by_role("button", name="Cancel").click()
    expect(row).to_have_count(1)
    row.get_by_role("button", name="Delete doomed").click()
    dialog.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("The key was deleted")
    expect(page.locator(f"tr[data-key-id='{created['id']}']")).to_have_count(0)
    assert setup.org.api.verify(str(created["key"]))["code"] == "NOT_FOUND"


def test_a_viewer_sees_no_write_controls_and_a_forced_post_is_refused(
    page: Page, setup: ConsoleSetup
) -> None:
    setup.org.api.create_key(name="visible")
    sign_in(page, setup.person("viewer"))
    expect(page.get_by_role("cell", name="visible")).to_be_visible()
    expect(page.get_by_role("link", name="+ Create API key")).to_have_count(0)
    expect(page.get_by_role("link", name="Edit visible")).to_have_count(0)
    expect(page.get_by_role("button", name="Delete visible")).to_have_count(0)
    page.goto("/console/keys/new")
    expect(
        page.get_by_role("heading", name="You do not have permission to do this")
    ).to_be_visible()

    page.goto("/console/keys")
    status = page.evaluate(
        """async () => {
            const token = document.querySelector("input[name=csrf_token]").value;
            const body = new URLSearchParams({csrf_token: token, name: "forced"});
            const response = await fetch("/console/keys", {method: "POST", body});
            return response.status;
        }"""
    )
    assert status == 403
    names = [k["name"] for k in setup.org.api.get("/v1/keys").json()["data"]]
    assert "forced" not in names


def test_a_form_post_without_the_csrf_token_is_refused(page: Page, setup: ConsoleSetup) -> None:
    sign_in(page, setup.person("admin"))
    response = page.request.post("/console/keys", form={"name": "no token"})
    assert response.status == 403
    assert "security token" in response.text()
    names = [k["name"] for k in setup.org.api.get("/v1/keys").json()["data"]]
    assert "no token" not in names


def test_an_org_requiring_explicit_permissions_refuses_an_empty_grid(
    page: Page, setup: ConsoleSetup
) -> None:
    setup.org.api.patch("/v1/org", json={"require_explicit_scopes": True})
    sign_in(page, setup.person("owner"))
    page.goto("/console/keys/new")
    expect(page.locator("#scopes-hint")).to_contain_text("requires explicit permissions")
    page.get_by_label("Name", exact=True).fill("no scopes")
    page.get_by_role("button", name="Create API key").click()
    error = page.locator("#scopes-error")
    expect(error).to_contain_text("requires explicit scopes")
    expect(page.get_by_label("Name", exact=True)).to_have_value("no scopes")


def test_the_hint_follows_the_chosen_app_and_an_open_app_is_held_to_the_policy(
    page: Page, setup: ConsoleSetup
) -> None:
    api = setup.org.api
    api.post("/v1/apps", json={"name": "legacy", "scopes": []})  # made before the policy
    api.post("/v1/apps", json={"name": "reader", "scopes": ["apps:read"]})
    api.patch("/v1/org", json={"require_explicit_scopes": True})
    sign_in(page, setup.person("owner"))
    page.goto("/console/keys/new")
    hint = page.locator("#scopes-hint")

    app = page.locator("#app_id")
    app.select_option(label="reader")
    expect(hint).to_have_text("The key gets the permissions of the app reader.")
    app.select_option(label="legacy")
    expect(hint).to_contain_text("the app legacy has none")
    page.get_by_label("Name", exact=True).fill("into legacy")
    page.get_by_role("button", name="Create API key").click()

    expect(page.locator("#scopes-error")).to_contain_text("'legacy' has none")
    expect(app.locator("option:checked")).to_have_text("legacy")


def test_search_and_filter_the_keys_table(page: Page, setup: ConsoleSetup) -> None:
    api = setup.org.api
    api.create_key(name="billing sandbox", environment="test", scopes=["apps:read"])
    api.create_key(name="billing live")
    sign_in(page, setup.person("viewer"))

    page.get_by_role("searchbox", name="Search").fill("billing")
    page.get_by_label("Environment").select_option("test")
    page.get_by_role("button", name="Filter").click()

    rows = page.locator("#keys-table tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("billing sandbox")
    expect(rows.first).to_contain_text("apps:read")
    page.get_by_role("link", name="Clear").click()
    expect(page.locator("#keys-table tbody tr", has_text="billing live")).to_contain_text(
        "FULL ACCESS"
    )
    screenshot(page, "keys-filtered")


def test_a_developer_is_offered_only_what_they_may_grant(page: Page, setup: ConsoleSetup) -> None:
    sign_in(page, setup.person("developer"))
    page.goto("/console/keys/new")
    users_row = page.locator("tr[data-resource=users]")
    expect(users_row.get_by_label("Write")).to_be_disabled()
    expect(page.locator("tr[data-resource=api_keys]").get_by_label("Write")).to_be_enabled()


def test_the_key_policy_shapes_the_form_for_a_developer_too(
    page: Page, setup: ConsoleSetup
) -> None:
    setup.org.api.patch("/v1/org", json={"max_key_lifetime_days": 30})
    sign_in(page, setup.person("developer"))  # developers do not hold org:read
    page.goto("/console/keys/new")
    options = page.locator("#expiration option").all_inner_texts()
    assert "No expiration" not in options
    assert "60 days" not in options
    last_day = (setup.server.clock() + timedelta(days=30)).date()
    expect(page.get_by_label("Custom expiry date")).to_have_attribute("max", last_day.isoformat())

    page.get_by_label("Name", exact=True).fill("to the last day")
    page.locator("tr[data-resource=api_keys]").get_by_label("Read").check()
    page.get_by_label("Expiration").select_option("custom")
    page.get_by_label("Custom expiry date").fill((last_day + timedelta(days=1)).isoformat())
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#expires_on-error")).to_contain_text("maximum key lifetime of 30 days")

    page.get_by_label("Custom expiry date").fill(last_day.isoformat())
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    setup.created.add(page.locator("#client-secret").input_value())


def test_rotate_a_key_copy_the_new_secret_and_see_the_grace(
    page: Page, setup: ConsoleSetup
) -> None:
    old = setup.org.api.create_key(name="rotate me", scopes=["apps:read"])
    sign_in(page, setup.person("admin"))
    page.locator(f"tr[data-key-id='{old['id']}']").get_by_role(
        "link", name="Edit rotate me"
    ).click()
    page.get_by_label("Grace period for the old key").select_option(label="1 hour")
    screenshot(page, "rotate-key")
    page.get_by_role("button", name="Rotate key").click()

    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Copy secret").click()
    secret = page.evaluate("navigator.clipboard.readText()")
    assert secret.startswith("kp_live_")
    setup.created.add(secret)
    new_id = page.locator("#client-id").input_value()
    dialog.get_by_role("button", name="I have saved it — close").click()
    expect(page).to_have_url(f"{setup.base}/console/keys")
    page.reload()
    assert secret not in page.content()

    expect(page.locator(f"tr[data-key-id='{old['id']}'] .badge-grace")).to_have_text("Grace")
    assert setup.org.api.verify(secret)["code"] == "VALID"
    assert setup.org.api.verify(str(old["key"]))["code"] == "VALID"
    assert setup.org.api.get(f"/v1/keys/{old['id']}").json()["rotated_to"] == new_id
