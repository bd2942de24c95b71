"""The users and settings pages in a real browser: inviting, roles, the last owner, and the
organization's policies for new keys, each from the point of view of one role.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from support.browser import PASSWORD, ConsoleSetup, Person, screenshot, sign_in

pytestmark = pytest.mark.browser

FORBIDDEN = "You do not have permission to do this"


@pytest.fixture
def elsewhere(browser: Browser, setup: ConsoleSetup) -> Iterator[BrowserContext]:
    """Another browser, for a second person signed in at the same time."""
    ctx = browser.new_context(base_url=setup.base)
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


def _email(label: str) -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


def _user(setup: ConsoleSetup, email: str) -> dict[str, object]:
    users = setup.org.api.get("/v1/users").json()["data"]
    [user] = [u for u in users if u["email"] == email]
    found: dict[str, object] = user
    return found


# ---- users --------------------------------------------------------------------------------


def test_an_owner_adds_a_developer_with_a_password_who_can_then_sign_in(
    page: Page, setup: ConsoleSetup
) -> None:
    email = _email("dana")
    sign_in(page, setup.person("owner"))
    page.get_by_role("link", name="Users").click()
    invite = page.locator("form#invite")
    invite.get_by_label("Email").fill(email)
    invite.get_by_label("Name").fill("Dana")
    invite.get_by_label("Role", exact=True).select_option("developer")
    invite.get_by_label("Password").fill(PASSWORD)
    invite.get_by_role("button", name="Invite user").click()

    expect(page.get_by_role("status")).to_have_text(
        f"{email} was added as developer. They can sign in with the password you chose."
    )
    expect(page.locator("#setup-link-dialog")).to_have_count(0)
    row = page.locator("#users-table tbody tr", has_text=email)
    expect(row.locator(".badge")).to_have_text("PASSWORD SET")
    user = _user(setup, email)
    assert (user["role"], user["name"], user["has_password"]) == ("developer", "Dana", True)

    sign_in(page, Person(email, PASSWORD, "developer"))
    expect(page.locator(".who .role")).to_have_text("developer")


def test_an_invitee_sets_a_password_from_the_one_time_link(
    page: Page, context: BrowserContext, setup: ConsoleSetup
) -> None:
    email = _email("ivy")
    sign_in(page, setup.person("owner"))
    page.goto("/console/users")
    invite = page.locator("form#invite")
    invite.get_by_label("Email").fill(email)
    invite.get_by_label("Role", exact=True).select_option("viewer")
    invite.get_by_role("button", name="Invite user").click()

    expect(page.get_by_role("status").first).to_contain_text(f"{email} was invited as viewer")
    dialog = page.get_by_role("dialog", name=f"Send {email} their set-password link")
    expect(dialog).to_contain_text("This is the only time the link is shown.")
    dialog.get_by_role("button", name="Copy link").click()
    expect(dialog.get_by_role("status")).to_have_text("Link copied to the clipboard.")
    link = str(page.evaluate("navigator.clipboard.readText()"))
    assert link.startswith(f"{setup.base}/console/set-password/")
    assert link == dialog.get_by_label("Set-password link").input_value()
    dialog.get_by_role("button", name="I have copied it — close").click()
    expect(page.locator("#setup-link-dialog")).to_have_count(0)  # removed, not hidden
    assert link not in page.content()
    row = page.locator("#users-table tbody tr", has_text=email)
    expect(row.locator(".badge")).to_have_text("INVITED")
    assert _user(setup, email)["has_password"] is False

    invitee = context.new_page()
    invitee.goto(link)
    expect(invitee.get_by_role("heading", name="Choose your password")).to_be_visible()
    invitee.get_by_label("New password").fill("a brand new passphrase")
    invitee.get_by_label("Repeat it").fill("a brand new passphrase")
    invitee.get_by_role("button", name="Set password").click()
    expect(invitee.get_by_role("status")).to_have_text("Your password is set. Sign in with it.")
    assert _user(setup, email)["has_password"] is True

    sign_in(invitee, Person(email, "a brand new passphrase", "viewer"))
    expect(invitee.locator(".who .role")).to_have_text("viewer")

    invitee.goto(link)
    expect(invitee.get_by_role("alert")).to_have_text(
        "This link is unknown, already used or expired. Ask an administrator for a new one."
    )
    expect(invitee.get_by_label("New password")).to_have_count(0)


def test_an_owner_changes_a_user_s_role_and_signs_them_out(
    page: Page, elsewhere: BrowserContext, setup: ConsoleSetup
) -> None:
    viewer = setup.person("viewer")
    viewers_page = elsewhere.new_page()
    sign_in(viewers_page, viewer)

    sign_in(page, setup.person("owner"))
    page.goto("/console/users")
    screenshot(page, "users")
    page.get_by_role("combobox", name=f"Role of {viewer.email}").select_option("developer")
    page.get_by_role("button", name=f"Save the role of {viewer.email}").click()

    expect(page.get_by_role("status")).to_contain_text("The role was changed")
    expect(page.get_by_role("combobox", name=f"Role of {viewer.email}")).to_have_value("developer")
    assert _user(setup, viewer.email)["role"] == "developer"

    viewers_page.reload()
    expect(viewers_page).to_have_url(re.compile(r"/console/login\?next="))
    sign_in(viewers_page, viewer)
    expect(viewers_page.locator(".who .role")).to_have_text("developer")


def test_the_last_owner_can_be_neither_demoted_nor_removed(page: Page, setup: ConsoleSetup) -> None:
    owner = setup.person("owner")
    # The organization's first owner goes, so the person signing in is the only owner left.
    assert setup.org.api.delete(f"/v1/users/{setup.org.owner_id}").status_code == 204
    sign_in(page, owner)
    page.goto("/console/users")
    page.get_by_role("combobox", name=f"Role of {owner.email}").select_option("admin")
    page.get_by_role("button", name=f"Save the role of {owner.email}").click()

    problem = page.locator("#users-problem")
    expect(problem).to_have_text(
        f"{owner.email} is the last owner of this organization and cannot be demoted; "
        "make another user an owner first."
    )
    expect(page.get_by_role("combobox", name=f"Role of {owner.email}")).to_have_value("owner")
    assert _user(setup, owner.email)["role"] == "owner"

    page.get_by_role("button", name=f"Delete {owner.email}").click()
    dialog = page.get_by_role("dialog", name=f"Delete {owner.email}?")
    expect(dialog).to_contain_text("This is your own account")
    dialog.get_by_role("button", name="Delete").click()
    expect(problem).to_contain_text("is the last owner of this organization and cannot be removed")
    assert _user(setup, owner.email)["role"] == "owner"
    page.goto("/console/users")  # still signed in
    expect(page.get_by_role("heading", name="Users")).to_be_visible()


def test_a_viewer_sees_the_users_but_no_invite_role_or_delete_controls(
    page: Page, setup: ConsoleSetup
) -> None:
    viewer = setup.person("viewer")
    developer = setup.person("developer")
    sign_in(page, viewer)
    page.get_by_role("link", name="Users").click()
    table = page.locator("#users-table")
    expect(table).to_contain_text(developer.email)
    expect(table.locator("tbody tr", has_text=viewer.email)).to_contain_text("(you)")
    expect(page.get_by_role("heading", name="Invite user")).to_have_count(0)
    expect(page.get_by_role("combobox")).to_have_count(0)
    row_buttons = page.get_by_role("button", name=re.compile(r"^(Save the role|Delete) "))
    expect(row_buttons).to_have_count(0)

    status = page.evaluate(
        """async (id) => {
            const token = document.querySelector("input[name=csrf_token]").value;
            const body = new URLSearchParams({csrf_token: token, role: "owner"});
            const response = await fetch(`/console/users/${id}/role`, {method: "POST", body});
            return response.status;
        }""",
        _user(setup, viewer.email)["id"],
    )
    assert status == 403
    assert _user(setup, viewer.email)["role"] == "viewer"


def test_a_developer_has_no_users_link_and_is_refused_the_users_page(
    page: Page, setup: ConsoleSetup
) -> None:
    sign_in(page, setup.person("developer"))
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="API keys")).to_be_visible()
    expect(nav.get_by_role("link", name="Users")).to_have_count(0)
    response = page.goto("/console/users")
    assert response is not None
    assert response.status == 403
    expect(page.get_by_role("heading", name=FORBIDDEN)).to_be_visible()
    expect(page.get_by_text("Your role does not include 'users:read'.")).to_be_visible()


# ---- settings -----------------------------------------------------------------------------


def test_an_owner_s_key_policies_shape_the_create_key_form(page: Page, setup: ConsoleSetup) -> None:
    sign_in(page, setup.person("owner"))
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Require explicit permissions for new keys").check()
    page.get_by_label("Maximum key lifetime (days)").fill("30")
    page.get_by_role("button", name="Save settings").click()

    expect(page.get_by_role("status")).to_have_text("The settings were saved.")
    expect(page.get_by_label("Require explicit permissions for new keys")).to_be_checked()
    expect(page.get_by_label("Maximum key lifetime (days)")).to_have_value("30")
    org = setup.org.api.get("/v1/org").json()
    assert (org["require_explicit_scopes"], org["max_key_lifetime_days"]) == (True, 30)
    screenshot(page, "settings")

    page.goto("/console/keys/new")
    expiration = page.get_by_label("Expiration", exact=True)
    options = expiration.locator("option")
    expect(options).to_have_text(["7 days", "30 days", "Custom date"])
    expect(page.get_by_text("requires keys to expire within 30 days")).to_be_visible()
    expect(page.locator("#scopes-hint")).to_contain_text("requires explicit permissions")

    # A custom date past the limit is refused next to the expiration, and nothing is created.
    page.get_by_label("Name", exact=True).fill("too long")
    page.locator("tr[data-resource=apps]").get_by_label("Read").check()
    expiration.select_option("custom")
    too_far = (setup.server.clock() + timedelta(days=60)).date().isoformat()  # the server's now
    page.get_by_label("Custom expiry date").fill(too_far)
    page.get_by_role("button", name="Create API key").click()
    expect(page.locator("#expires_on-error")).to_have_text(
        "Exceeds this organization's maximum key lifetime of 30 days from creation."
    )
    names = [k["name"] for k in setup.org.api.get("/v1/keys").json()["data"]]
    assert "too long" not in names

    # The longest offered choice is within the limit.
    expect(page.get_by_label("Name", exact=True)).to_have_value("too long")
    expiration.select_option("30")
    page.get_by_role("button", name="Create API key").click()
    dialog = page.get_by_role("dialog", name="Save your new API key")
    expect(dialog).to_be_visible()
    setup.created.add(dialog.get_by_label("Client secret (API key)").input_value())
    [key] = [k for k in setup.org.api.get("/v1/keys").json()["data"] if k["name"] == "too long"]
    lifetime = datetime.fromisoformat(key["expires_at"]) - datetime.fromisoformat(key["created_at"])
    assert lifetime == timedelta(days=30)
    assert key["scopes"] == ["apps:read"]


@pytest.mark.parametrize("typed", ["0", "3651", "thirty"])
def test_an_out_of_range_lifetime_is_explained_next_to_the_field(
    page: Page, setup: ConsoleSetup, typed: str
) -> None:
    sign_in(page, setup.person("owner"))
    page.goto("/console/settings")
    page.get_by_label("Maximum key lifetime (days)").fill(typed)
    page.get_by_role("button", name="Save settings").click()

    field = page.get_by_label("Maximum key lifetime (days)")
    expect(page.locator("#max_key_lifetime_days-error")).to_have_text(
        "Enter a whole number of days from 1 to 3650, or leave it empty."
    )
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(field).to_have_value(typed)
    assert setup.org.api.get("/v1/org").json()["max_key_lifetime_days"] is None


def test_a_viewer_sees_the_settings_read_only(page: Page, setup: ConsoleSetup) -> None:
    setup.org.api.patch("/v1/org", json={"max_key_lifetime_days": 90})
    sign_in(page, setup.person("viewer"))
    page.get_by_role("link", name="Settings").click()
    expect(
        page.get_by_text("Your role can see these settings but not change them.")
    ).to_be_visible()
    for label in (
        "Organization name",
        "Require explicit permissions for new keys",
        "Maximum key lifetime (days)",
    ):
        expect(page.get_by_label(label)).to_be_disabled()
    expect(page.get_by_label("Maximum key lifetime (days)")).to_have_value("90")
    expect(page.get_by_role("button", name="Save settings")).to_have_count(0)

    status = page.evaluate(
        """async () => {
            const token = document.querySelector("input[name=csrf_token]").value;
            const body = new URLSearchParams({csrf_token: token, name: "taken over"});
            const response = await fetch("/console/settings", {method: "POST", body});
            return response.status;
        }"""
    )
    assert status == 403
    assert setup.org.api.get("/v1/org").json()["name"] != "taken over"
