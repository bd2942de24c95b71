"""The webhook outbox survives a crash: ``keyplane serve`` is SIGKILLed right after a change
commits, before any delivery; a new process, started on the same database, delivers the
message by itself, signed, to a real receiver."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from conftest import CreatedKeys, free_port
from support.receiver import Receiver
from support.serving import KEYPLANE, clean_env, serve

pytestmark = pytest.mark.e2e


def test_a_message_committed_before_a_sigkill_is_delivered_after_the_restart(
    tmp_path: Path, receiver: Receiver, created_keys: CreatedKeys
) -> None:
    # The first process's delivery job runs once at start, then not for an hour: whatever
    # it committed afterwards can only reach the receiver through the database.
    idle = clean_env(KEYPLANE_WEBHOOKS_DELIVERY_INTERVAL="3600")
    first = serve(tmp_path, free_port(), env=idle)
    process = next(first)
    command = [KEYPLANE, "orgs", "create", "Acme", "--owner-email", "ops@acme.io", "--json"]
    made = subprocess.run(
        [*command, "--database-url", process.database_url],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
    )
    owner = json.loads(made.stdout)
    created_keys.add(owner["api_key"])
    headers = {"Authorization": f"Bearer {owner['api_key']}"}
    with httpx.Client(base_url=process.base_url, headers=headers, timeout=10) as api:
        hook = api.post("/v1/webhooks", json={"url": receiver.url, "events": ["key.created"]})
        assert hook.status_code == 201, hook.text
        secret = hook.json()["secret"]
        created_keys.add_webhook_secret(secret)
        key = api.post("/v1/keys", json={"name": "after the crash", "scopes": ["apps:read"]})
        assert key.status_code == 201, key.text
        created_keys.add(key.json()["key"])

    process.proc.kill()  # SIGKILL: no shutdown, no flush, nothing sent
    process.proc.wait(timeout=10)
    first.close()
    assert receiver.received == []

    second = serve(tmp_path, free_port())
    try:
        next(second)
        [received] = receiver.wait_for(1, seconds=30)
    finally:
        second.close()
    message = received.verified(secret)
    assert message["type"] == "key.created"
    assert message["data"]["id"] == key.json()["id"]
    assert key.json()["key"] not in received.body.decode()
