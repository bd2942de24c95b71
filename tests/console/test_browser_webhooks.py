"""Webhooks in a real browser: add one (its signing secret shown once), send a test that a
real receiver verifies, see the attempt, redeliver it, roll the secret, edit and delete."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from support.browser import ConsoleSetup, screenshot, sign_in
from support.receiver import Receiver

pytestmark = pytest.mark.browser


def _saved_secret(page: Page, setup: ConsoleSetup) -> str:
    dialog = page.get_by_role("dialog", name="Save your signing secret")
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Copy secret").click()
    secret = str(page.evaluate("navigator.clipboard.readText()"))
    assert secret.startswith("whsec_")
    setup.created.add_webhook_secret(secret)
    dialog.get_by_role("button", name="I have saved it — close").click()
    expect(page.locator("#show-once")).to_have_count(0)  # removed from the page, not hidden
    assert secret not in page.content()
    return secret


def _deliver(setup: ConsoleSetup, receiver: Receiver, count: int) -> None:
    job = next(j for j in setup.server.kp.jobs.jobs if j.name == "webhook-delivery")
    for _ in range(60):
        if len(receiver.received) >= count:
            return
        job.run(setup.server.clock())


def test_a_webhook_from_creation_to_a_verified_delivery_and_a_redelivery(
    page: Page, setup: ConsoleSetup, receiver: Receiver
) -> None:
    sign_in(page, setup.person("admin"))
    page.get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="Add webhook").click()
    page.get_by_label("Endpoint URL").fill("http://169.254.169.254/latest/meta-data/")
    page.get_by_label("All events").check()
    page.get_by_role("button", name="Add webhook").click()
    expect(page.locator("#url-error")).to_contain_text("link-local")

    page.get_by_label("Endpoint URL").fill(receiver.url)
    page.get_by_role("button", name="Add webhook").click()
    secret = _saved_secret(page, setup)

    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("status")).to_contain_text("test message was queued")
    _deliver(setup, receiver, 1)
    assert receiver.received[0].verified(secret)["type"] == "webhook.test"
    page.reload()
    row = page.locator("#deliveries-table tbody tr").first
    expect(row).to_contain_text("delivered")
    expect(row).to_contain_text("204")
    expect(row).to_contain_text("ms")
    screenshot(page, "webhook")

    row.get_by_role("button", name="Redeliver").click()
    expect(page.get_by_role("status")).to_contain_text("queued to be sent again")
    _deliver(setup, receiver, 2)
    assert receiver.received[1].headers["webhook-id"] == receiver.received[0].headers["webhook-id"]

    page.get_by_role("button", name="Roll secret").click()
    rolled = _saved_secret(page, setup)
    assert rolled != secret
    page.get_by_role("button", name="Send test").click()
    _deliver(setup, receiver, 3)
    assert receiver.received[2].signed_by(rolled)
    assert receiver.received[2].signed_by(secret)  # the old one signs for a day more


def test_editing_events_and_disabling_then_deleting(page: Page, setup: ConsoleSetup) -> None:
    made = setup.org.api.post(
        "/v1/webhooks", json={"url": "https://example.com/hooks", "events": ["*"]}
    ).json()
    sign_in(page, setup.person("admin"))
    page.goto(f"/console/webhooks/{made['id']}")
    page.get_by_label("All events").uncheck()
    page.locator("input[value='key.created']").check()
    page.get_by_label("Enabled").uncheck()
    page.get_by_role("button", name="Save webhook").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    read = setup.org.api.get(f"/v1/webhooks/{made['id']}").json()
    assert read["events"] == ["key.created"]
    assert read["enabled"] is False

    page.get_by_role("button", name="Send test").click()
    expect(page.get_by_role("alert").first).to_contain_text("disabled")

    page.get_by_role("button", name="Delete webhook").click()
    page.locator("dialog#delete-webhook").get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("deleted")
    assert setup.org.api.get(f"/v1/webhooks/{made['id']}").status_code == 404
