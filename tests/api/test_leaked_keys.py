"""POST /v1/keys/leaked: public reports of leaked keys.

A key still usable is disabled (or deleted, per the organization's ``leaked_key_action``),
audited, announced by a ``key.leaked`` webhook and emailed to owners and admins (a real
SMTP server); the answer is the same 202 whatever the keys; caps, rate limit and repeated
reports; and on PostgreSQL, another node stops accepting the key within a second.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from email.message import Message
from typing import Any

import httpx
import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.tokens import mint_key
from keyplane.settings import Settings
from keyplane.storage.listener import PostgresInvalidationListener

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, CreatedKeys, Org, Server, _start_server
from support import eventually, problem
from support.databases import fresh_postgres
from support.receiver import Receiver
from support.smtp import SmtpServer

RATE = 5  # leak reports a minute per address on these tests' servers


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def leak_server(database_url: str, smtp: SmtpServer) -> Iterator[Server]:
    server = _start_server(database_url, None, smtp_url=smtp.url, leak_reports_per_minute=RATE)
    yield server
    server.stop()


@pytest.fixture
def acme(leak_server: Server, created_keys: CreatedKeys) -> Org:
    return Org(leak_server, created_keys)


def report(server: Server, keys: list[str], **more: Any) -> httpx.Response:
    with httpx.Client(base_url=server.base_url, timeout=15) as anonymous:
        return anonymous.post("/v1/keys/leaked", json={"keys": keys, **more})


def handled(server: Server) -> None:
    """Every report answered so far is handled (the answer never waits for it)."""
    server.kp.leaks.drain()


def _subscribe(org: Org, receiver: Receiver) -> str:
    made = org.api.post(
        "/v1/webhooks", json={"url": receiver.url + "/hook", "events": ["key.leaked"]}
    )
    assert made.status_code == 201, made.text
    return str(made.json()["secret"])


def _text(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode()


def _events(org: Org, action: str = "key.leaked") -> list[dict[str, Any]]:
    answer = org.api.get(f"/v1/audit-events?action={action}")
    assert answer.status_code == 200, answer.text
    data: list[dict[str, Any]] = answer.json()["data"]
    return data


def test_a_known_key_is_disabled_audited_announced_and_emailed(
    leak_server: Server, acme: Org, smtp: SmtpServer, receiver: Receiver
) -> None:
    admin = acme.api.post("/v1/users", json={"email": "admin@example.com", "role": "admin"})
    assert admin.status_code == 201, admin.text
    acme.api.post("/v1/users", json={"email": "dev@example.com", "role": "developer"})
    secret = _subscribe(acme, receiver)
    made = acme.api.create_key(name="ci token", scopes=["apps:read"])
    key, key_id = str(made["key"]), str(made["id"])
    assert acme.api.verify(key)["code"] == "VALID"

    answer = report(leak_server, [key], source="https://example.com/paste/1")
    assert answer.status_code == 202
    assert answer.json() == {"status": "accepted"}
    handled(leak_server)

    assert acme.api.verify(key)["code"] == "DISABLED"
    assert acme.api.get(f"/v1/keys/{key_id}").json()["status"] == "inactive"
    [event] = _events(acme)
    assert event["target"]["id"] == key_id
    assert event["actor"]["type"] == "system"
    assert event["actor"]["name"] == "Leak report (POST /v1/keys/leaked)"
    assert event["details"]["source"] == "https://example.com/paste/1"
    assert event["details"]["action_taken"] == "disabled"

    leak_server.kp.jobs.run_once()
    [delivered] = receiver.wait_for(1)
    payload = delivered.verified(secret)
    assert payload["type"] == "key.leaked"
    data = payload["data"]
    assert data["id"] == key_id
    assert data["name"] == "ci token"
    assert data["masked_key"] == made["masked_key"]
    assert data["action_taken"] == "disabled"
    assert data["source"] == "https://example.com/paste/1"
    assert data["reported_at"]
    assert "app_id" in data
    assert key not in delivered.body.decode()

    assert eventually(lambda: len(smtp.inbox.messages) == 1)
    [(to, message)] = smtp.inbox.messages
    users = acme.api.get("/v1/users").json()["data"]
    owners = [u["email"] for u in users if u["role"] in ("owner", "admin")]
    assert sorted(to) == sorted(owners)
    assert "admin@example.com" in to
    assert "dev@example.com" not in to
    text = _text(message)
    assert key_id in text
    assert str(made["masked_key"]) in text
    assert key not in message.as_string()


def test_unknown_garbage_and_known_keys_get_the_same_answer(leak_server: Server, acme: Org) -> None:
    known = str(acme.api.create_key(name="known")["key"])
    bodies = [
        [known],
        [mint_key()],  # a well-formed key nobody issued
        ["kp_live_" + "x" * 38, "hello", ""],  # checksum wrong, not a key at all
        [],
    ]
    answers = [report(leak_server, keys) for keys in bodies]
    assert {a.status_code for a in answers} == {202}
    assert {a.content for a in answers} == {b'{"status":"accepted"}'}
    assert {a.headers["content-type"] for a in answers} == {"application/json"}
    handled(leak_server)
    assert acme.api.verify(known)["code"] == "DISABLED"


def test_more_than_1000_keys_is_a_422_naming_the_first_beyond(leak_server: Server) -> None:
    garbage = ["kp_live_" + "x" * 38] * 1001  # about 47 KB: under the body cap
    answer = report(leak_server, garbage)
    problem(answer, 422, "keys[1000]")
    wrong = report(leak_server, [1, 2])  # type: ignore[list-item]
    problem(wrong, 422, "keys[0]")


def test_a_body_over_the_cap_is_a_413_whether_announced_or_streamed(
    leak_server: Server,
) -> None:
    big = json.dumps({"keys": ["x" * 1000] * 70}).encode()  # ~70 KB
    with httpx.Client(base_url=leak_server.base_url, timeout=15) as anonymous:
        announced = anonymous.post(
            "/v1/keys/leaked", content=big, headers={"content-type": "application/json"}
        )
        streamed = anonymous.post(
            "/v1/keys/leaked",
            content=iter([big[i : i + 8192] for i in range(0, len(big), 8192)]),
            headers={"content-type": "application/json"},
        )
    for answer in (announced, streamed):
        assert problem(answer, 413)["type"] == "urn:keyplane:problem:payload-too-large"


def test_reports_past_the_rate_limit_get_429_with_retry_after(leak_server: Server) -> None:
    answers = [report(leak_server, []) for _ in range(RATE + 1)]
    assert [a.status_code for a in answers[:RATE]] == [202] * RATE
    refused = answers[RATE]
    assert problem(refused, 429)["type"] == "urn:keyplane:problem:too-many-requests"
    assert int(refused.headers["retry-after"]) >= 1


def test_delete_mode_deletes_the_key(leak_server: Server, acme: Org, smtp: SmtpServer) -> None:
    changed = acme.api.patch("/v1/org", json={"leaked_key_action": "delete"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["leaked_key_action"] == "delete"
    [update] = _events(acme, "org.update")
    assert update["changes"]["leaked_key_action"] == {"before": "disable", "after": "delete"}
    made = acme.api.create_key(name="doomed")

    assert report(leak_server, [str(made["key"])]).status_code == 202
    handled(leak_server)

    assert acme.api.get(f"/v1/keys/{made['id']}").status_code == 404
    assert acme.api.verify(str(made["key"]))["code"] == "NOT_FOUND"
    [event] = _events(acme)
    assert event["details"]["action_taken"] == "deleted"
    assert eventually(lambda: len(smtp.inbox.messages) == 1)


def test_delete_mode_deletes_the_keys_delegated_keys_with_it(
    leak_server: Server, acme: Org, smtp: SmtpServer
) -> None:
    assert acme.api.patch("/v1/org", json={"leaked_key_action": "delete"}).status_code == 200
    made = acme.api.create_key(name="parent", scopes=["apps:read"])
    as_parent = acme.api.as_key(str(made["key"]))
    child = as_parent.post(f"/v1/keys/{made['id']}/children", json={"name": "child"}).json()

    assert report(leak_server, [str(made["key"])]).status_code == 202
    handled(leak_server)

    assert acme.api.get(f"/v1/keys/{child['id']}").status_code == 404
    assert acme.api.verify(str(child["key"]))["code"] == "NOT_FOUND"
    [deleted] = _events(acme, "key.delete")
    assert deleted["target"]["id"] == child["id"]


def test_leaked_key_action_accepts_only_its_two_values(acme: Org) -> None:
    for wrong in ("revoke", None, 1):
        answer = acme.api.patch("/v1/org", json={"leaked_key_action": wrong})
        problem(answer, 422, "leaked_key_action")
    assert acme.api.get("/v1/org").json()["leaked_key_action"] == "disable"


def test_keys_of_two_organizations_in_one_report_are_each_revoked_and_told(
    leak_server: Server, created_keys: CreatedKeys, smtp: SmtpServer
) -> None:
    one, two = Org(leak_server, created_keys), Org(leak_server, created_keys)
    two.api.patch("/v1/org", json={"leaked_key_action": "delete"})
    a = one.api.create_key(name="a")
    b = two.api.create_key(name="b")

    assert report(leak_server, [str(a["key"]), mint_key(), str(b["key"])]).status_code == 202
    handled(leak_server)

    assert one.api.get(f"/v1/keys/{a['id']}").json()["status"] == "inactive"
    assert two.api.get(f"/v1/keys/{b['id']}").status_code == 404
    assert [e["target"]["id"] for e in _events(one)] == [a["id"]]
    assert [e["target"]["id"] for e in _events(two)] == [b["id"]]
    assert eventually(lambda: len(smtp.inbox.messages) == 2)
    texts = {_text(message) for _, message in smtp.inbox.messages}
    assert any(str(a["id"]) in t and str(b["id"]) not in t for t in texts)
    assert any(str(b["id"]) in t and str(a["id"]) not in t for t in texts)


def test_reporting_a_key_again_changes_nothing_and_tells_nobody_twice(
    leak_server: Server, acme: Org, smtp: SmtpServer
) -> None:
    made = acme.api.create_key(name="twice")
    for _ in range(3):
        assert report(leak_server, [str(made["key"]), str(made["key"])]).status_code == 202
    handled(leak_server)
    assert len(_events(acme)) == 1
    time.sleep(0.2)
    assert len(smtp.inbox.messages) == 1
    # A key a person disabled is not usable either: a report leaves it alone.
    other = acme.api.create_key(name="off")
    acme.api.patch(f"/v1/keys/{other['id']}", json={"status": "inactive"})
    report(leak_server, [str(other["key"])])
    handled(leak_server)
    assert len(_events(acme)) == 1


@pytest.mark.postgres
def test_a_key_reported_to_one_node_stops_verifying_on_the_other_within_a_second(
    postgres_url: str, created_keys: CreatedKeys
) -> None:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_leak_nodes") as url:
        first = _start_server(url, None)
        other = build(Settings(database_url=url, secret_key=TEST_SECRET), run_migrations=False)
        try:
            _disabled_on_the_other_node(first, Org(first, created_keys), other)
        finally:
            other.close()
            first.stop()


def _disabled_on_the_other_node(first: Server, acme: Org, other: Keyplane) -> None:
    other.start(listen=True)
    assert isinstance(other.listener, PostgresInvalidationListener)
    assert other.listener.listening.wait(10)
    made = acme.api.create_key(name="on two nodes")
    key = str(made["key"])
    assert other.verifier.verify(acme.id, key, ()).code == "VALID"  # warm there

    assert report(first, [key]).status_code == 202
    handled(first)  # committed on the first node
    started = time.monotonic()
    assert eventually(lambda: other.verifier.verify(acme.id, key, ()).code == "DISABLED", 1.0)
    assert time.monotonic() - started < 1.1  # the last probe may run just past the second


def test_the_report_is_never_recorded_in_full(leak_server: Server, acme: Org) -> None:
    made = acme.api.create_key(name="masked")
    key = str(made["key"])
    report(leak_server, [key], source=f"found next to {key} in a gist")
    handled(leak_server)
    [event] = _events(acme)
    assert key not in json.dumps(event)
    assert event["details"]["source"] == f"found next to {made['masked_key']} in a gist"


@pytest.mark.redis
@pytest.mark.postgres
def test_with_redis_the_rate_limit_holds_across_nodes(
    postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_leak_nodes") as url:
        shared = {"redis_url": redis_url, "redis_prefix": redis_prefix}
        nodes = [_start_server(url, None, leak_reports_per_minute=RATE, **shared) for _ in range(2)]
        try:
            codes = [report(nodes[i % 2], []).status_code for i in range(RATE + 1)]
        finally:
            for node in nodes:
                node.stop()
    assert codes == [202] * RATE + [429]
