"""/v1/webhooks: endpoints, their show-once secrets, the outbox the audit records feed, and
deliveries to a real receiver that verifies each signature with ``standardwebhooks``.

The shared servers run no jobs: ``deliver`` runs the delivery job the way the runner does,
with the server's clock (or a moment a test names, for a retry that is due later).
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import Api, Org, Server
from support import problem
from support.receiver import Receiver

WEBHOOK_FIELDS = {
    "id",
    "url",
    "events",
    "enabled",
    "description",
    "disabled_reason",
    "failing_since",
    "previous_secret_valid_until",
    "created_by",
    "created_at",
    "updated_at",
}


def create_webhook(api: Api, url: str, events: list[str] | None = None, **body: Any) -> Any:
    response = api.post("/v1/webhooks", json={"url": url, "events": events or ["*"], **body})
    assert response.status_code == 201, response.text
    return response.json()


def deliver(server: Server, receiver: Receiver, count: int, *, at: datetime | None = None) -> Any:
    """Runs the delivery job until ``receiver`` has ``count`` requests (other tests' messages,
    to endpoints nobody listens on, may come first)."""
    job = next(j for j in server.kp.jobs.jobs if j.name == "webhook-delivery")
    for _ in range(60):
        if len(receiver.received) >= count:
            break
        job.run(at or server.clock())
    assert len(receiver.received) == count, receiver.received
    return receiver.received


def deliveries(api: Api, webhook_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/webhooks/{webhook_id}/deliveries")
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["data"]
    return found


# ---- create, read, change, delete ---------------------------------------------------------


def test_creating_a_webhook_shows_its_signing_secret_once_and_never_caches_it(org: Org) -> None:
    response = org.api.post(
        "/v1/webhooks",
        json={"url": "https://example.com/hooks", "events": ["key.created"], "description": "CI"},
    )

    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    made = response.json()
    assert set(made) == WEBHOOK_FIELDS | {"secret", "warning"}
    assert made["id"].startswith("whk_")
    assert made["secret"].startswith("whsec_")
    assert made["events"] == ["key.created"]
    assert made["enabled"] is True
    assert made["created_by"] == org.owner_key_id
    read = org.api.get(f"/v1/webhooks/{made['id']}").json()
    assert set(read) == WEBHOOK_FIELDS
    listed = org.api.get("/v1/webhooks").json()
    assert [w["id"] for w in listed["data"]] == [made["id"]]
    assert made["secret"] not in json.dumps([read, listed])


def test_the_list_is_cursor_paginated(org: Org) -> None:
    made = [create_webhook(org.api, f"https://example.com/{n}")["id"] for n in range(3)]
    first = org.api.get("/v1/webhooks?limit=2").json()
    second = org.api.get(f"/v1/webhooks?limit=2&cursor={first['next_cursor']}").json()
    assert [w["id"] for w in first["data"] + second["data"]] == made[::-1]
    assert second["next_cursor"] is None


def test_a_change_and_a_delete_are_audited(org: Org) -> None:
    made = create_webhook(org.api, "https://example.com/hooks")
    changed = org.api.patch(
        f"/v1/webhooks/{made['id']}", json={"events": ["app.created", "app.deleted"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["events"] == ["app.created", "app.deleted"]
    assert org.api.delete(f"/v1/webhooks/{made['id']}").status_code == 204
    problem(org.api.get(f"/v1/webhooks/{made['id']}"), 404)

    events = org.api.get("/v1/audit-events?action=webhook.").json()["data"]
    assert [e["action"] for e in events] == ["webhook.delete", "webhook.update", "webhook.create"]
    assert events[1]["changes"] == {
        "events": {"before": ["*"], "after": ["app.created", "app.deleted"]}
    }
    assert made["secret"] not in json.dumps(events)


@pytest.mark.parametrize(
    "events",
    [["key.created", "key.exploded"], [], ["KEY.CREATED"]],
    ids=["unknown", "none", "wrong case"],
)
def test_unknown_or_missing_events_are_a_422_naming_events(org: Org, events: list[str]) -> None:
    response = org.api.post("/v1/webhooks", json={"url": "https://example.com", "events": events})
    problem(response, 422, "events")


def test_star_stands_for_every_event(org: Org) -> None:
    made = create_webhook(org.api, "https://example.com", ["key.created", "*"])
    assert made["events"] == ["*"]


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hooks",
        "javascript:alert(1)",
        "http://user:secret@example.com/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.10.1:8080/",
        "http://[fe80::1]/hooks",
        "http://[fd00:ec2::254]/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://0.0.0.0:8080/",
        "http:///no-host",
        "https://example.com/" + "a" * 2048,
        "https://exa mple.com/",
    ],
)
def test_a_url_that_can_never_be_a_target_is_a_422_when_saved(org: Org, url: str) -> None:
    problem(org.api.post("/v1/webhooks", json={"url": url, "events": ["*"]}), 422, "url")
    made = create_webhook(org.api, "https://example.com/hooks")
    problem(org.api.patch(f"/v1/webhooks/{made['id']}", json={"url": url}), 422, "url")


@pytest.mark.parametrize(
    "url", ["https://example.com/hooks?x=1", "http://10.0.0.5:8080/h", "http://127.0.0.1:9/"]
)
def test_public_private_and_loopback_urls_are_accepted_by_default(org: Org, url: str) -> None:
    assert create_webhook(org.api, url)["url"] == url


def test_another_organizations_webhook_is_a_404(org: Org, other_org: Org) -> None:
    theirs = create_webhook(other_org.api, "https://example.com/hooks")
    problem(org.api.get(f"/v1/webhooks/{theirs['id']}"), 404)
    problem(org.api.post(f"/v1/webhooks/{theirs['id']}/roll-secret"), 404)


# ---- delivery -----------------------------------------------------------------------------


def test_a_created_key_is_delivered_signed_and_without_any_secret(
    server: Server, org: Org, receiver: Receiver
) -> None:
    hook = create_webhook(org.api, receiver.url, ["key.created"])
    key = org.api.create_key(name="billing", scopes=["apps:read"])

    [received] = deliver(server, receiver, 1)

    message = received.verified(hook["secret"])
    assert message["type"] == "key.created"
    data = message["data"]
    assert data["id"] == key["id"]
    assert data["object"] == "key"
    assert data["name"] == "billing"
    assert data["organization_id"] == org.id
    assert data["actor"]["type"] == "key"
    assert data["actor"]["id"] == org.owner_key_id
    assert data["changes"] == {}
    assert data["scopes"] == ["apps:read"]  # the audit event's details
    assert str(key["key"]) not in received.body.decode()
    assert str(key["key"])[8:40] not in received.body.decode()
    assert hook["secret"] not in received.body.decode()
    [delivery] = deliveries(org.api, hook["id"])
    assert delivery["id"] == received.headers["webhook-id"]
    assert delivery["id"].startswith("msg_")
    assert delivery["status"] == "delivered"
    assert delivery["payload"] == message
    [attempt] = delivery["attempts"]
    assert attempt["ok"] is True
    assert attempt["status_code"] == 204
    assert attempt["latency_ms"] >= 0
    assert attempt["id"].startswith("dlv_")


def test_only_subscribed_events_of_enabled_webhooks_are_queued(
    server: Server, org: Org, receiver: Receiver
) -> None:
    apps_only = create_webhook(org.api, receiver.url, ["app.created"])
    disabled = create_webhook(org.api, receiver.url, ["*"], enabled=False)
    org.api.create_key(name="not an app")
    assert deliveries(org.api, apps_only["id"]) == []

    org.api.post("/v1/apps", json={"name": "billing"})

    [received] = deliver(server, receiver, 1)
    assert received.verified(apps_only["secret"])["type"] == "app.created"
    assert deliveries(org.api, disabled["id"]) == []


def test_a_failed_attempt_is_recorded_and_retried_within_ten_seconds(
    server: Server, org: Org, receiver: Receiver
) -> None:
    hook = create_webhook(org.api, receiver.url, ["app.created"])
    receiver.status, receiver.answer = 503, b"upstream down " + b"x" * 1000
    org.api.post("/v1/apps", json={"name": "billing"})
    deliver(server, receiver, 1)

    [pending] = deliveries(org.api, hook["id"])
    assert pending["status"] == "pending"
    [failed] = pending["attempts"]
    assert failed["ok"] is False
    assert failed["status_code"] == 503
    assert failed["response_excerpt"].startswith("upstream down")
    assert len(failed["response_excerpt"]) == 500
    attempted = datetime.fromisoformat(failed["attempted_at"])
    due = datetime.fromisoformat(pending["next_attempt_at"])
    assert timedelta(seconds=3) <= due - attempted <= timedelta(seconds=10)
    assert org.api.get(f"/v1/webhooks/{hook['id']}").json()["failing_since"] is not None

    receiver.status = 200
    [first, second] = deliver(server, receiver, 2, at=due)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert second.signed_by(hook["secret"])
    [delivered] = deliveries(org.api, hook["id"])
    assert delivered["status"] == "delivered"
    assert [a["status_code"] for a in delivered["attempts"]] == [503, 200]
    assert org.api.get(f"/v1/webhooks/{hook['id']}").json()["failing_since"] is None


def test_a_redirect_is_never_followed(server: Server, org: Org, receiver: Receiver) -> None:
    elsewhere = Receiver().start()
    try:
        hook = create_webhook(org.api, receiver.url, ["webhook.test"])
        receiver.status, receiver.location = 307, elsewhere.url
        org.api.post(f"/v1/webhooks/{hook['id']}/test")
        deliver(server, receiver, 1)
        [delivery] = deliveries(org.api, hook["id"])
        assert delivery["attempts"][0]["status_code"] == 307
        assert delivery["status"] == "pending"
        assert elsewhere.received == []
    finally:
        elsewhere.stop()


def test_after_a_roll_both_secrets_sign_for_a_day(
    server: Server, org: Org, receiver: Receiver
) -> None:
    hook = create_webhook(org.api, receiver.url, ["webhook.test"])
    rolled = org.api.post(f"/v1/webhooks/{hook['id']}/roll-secret")
    assert rolled.status_code == 200, rolled.text
    assert rolled.headers["cache-control"] == "no-store"
    new = rolled.json()
    assert new["secret"].startswith("whsec_")
    assert new["secret"] != hook["secret"]
    until = datetime.fromisoformat(new["previous_secret_valid_until"])
    assert timedelta(hours=23, minutes=59) < until - server.clock() <= timedelta(hours=24)

    org.api.post(f"/v1/webhooks/{hook['id']}/test")
    [received] = deliver(server, receiver, 1)

    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert received.signed_by(new["secret"])
    assert received.signed_by(hook["secret"])
    actions = [e["action"] for e in org.api.get("/v1/audit-events?action=webhook.").json()["data"]]
    assert "webhook.roll_secret" in actions


def test_a_test_message_and_a_redelivery_reach_the_receiver(
    server: Server, org: Org, receiver: Receiver
) -> None:
    hook = create_webhook(org.api, receiver.url, ["key.deleted"])
    queued = org.api.post(f"/v1/webhooks/{hook['id']}/test")
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "pending"
    [first] = deliver(server, receiver, 1)
    assert first.verified(hook["secret"])["type"] == "webhook.test"

    again = org.api.post(f"/v1/webhooks/{hook['id']}/deliveries/{queued.json()['id']}/redeliver")

    assert again.status_code == 202, again.text
    [_, second] = deliver(server, receiver, 2)
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    assert second.signed_by(hook["secret"])
    actions = [e["action"] for e in org.api.get("/v1/audit-events?action=webhook.").json()["data"]]
    assert actions[:2] == ["webhook.redeliver", "webhook.test"]


def test_a_disabled_webhook_takes_no_test_and_no_redelivery(org: Org) -> None:
    hook = create_webhook(org.api, "https://example.com/hooks")
    queued = org.api.post(f"/v1/webhooks/{hook['id']}/test").json()
    org.api.patch(f"/v1/webhooks/{hook['id']}", json={"enabled": False})

    problem(org.api.post(f"/v1/webhooks/{hook['id']}/test"), 409, "enabled")
    redeliver = f"/v1/webhooks/{hook['id']}/deliveries/{queued['id']}/redeliver"
    problem(org.api.post(redeliver), 409, "enabled")


def test_a_delivery_of_another_webhook_is_a_404(org: Org) -> None:
    one = create_webhook(org.api, "https://example.com/one")
    two = create_webhook(org.api, "https://example.com/two")
    queued = org.api.post(f"/v1/webhooks/{one['id']}/test").json()
    problem(org.api.post(f"/v1/webhooks/{two['id']}/deliveries/{queued['id']}/redeliver"), 404)


def test_a_url_resolving_to_a_forbidden_address_is_refused_at_delivery(
    server: Server, org: Org
) -> None:
    # Every attempt checks the addresses it connects to (tests/unit/test_outbound.py checks
    # names resolved by DNS); here a stored URL the save rules would refuse, as one saved
    # before a rule existed, is refused at delivery all the same.
    hook = create_webhook(org.api, "http://127.0.0.1:9/hooks", ["webhook.test"])
    with server.kp.store.transaction() as tx:
        stored = tx.webhooks.get(org.id, hook["id"])
        assert stored is not None
        tx.webhooks.update(replace(stored, url="http://169.254.169.254/latest/meta-data/"))
    org.api.post(f"/v1/webhooks/{hook['id']}/test")
    job = next(j for j in server.kp.jobs.jobs if j.name == "webhook-delivery")
    for _ in range(60):
        [delivery] = deliveries(org.api, hook["id"])
        if delivery["attempts"]:
            break
        job.run(server.clock())
    [attempt] = delivery["attempts"]
    assert attempt["status_code"] is None
    assert "169.254.169.254" in attempt["error"]
    assert "refused" in attempt["error"]
