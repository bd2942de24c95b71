"""The README's webhook receiver, run as written: a real delivery from keyplane reaches it,
verifies, and is printed; a forged one is refused with 400."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from conftest import CreatedKeys, Org, Server, free_port

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/e2e/test_readme_webhooks.py"


def receiver_code() -> str:
    text = README.read_text()
    start = text.index("```python\n", text.index(MARKER)) + len("```python\n")
    return text[start : text.index("```", start)]


def test_the_readme_receiver_verifies_a_real_delivery_and_refuses_a_forged_one(
    sqlite_server: Server, created_keys: CreatedKeys, tmp_path: Path
) -> None:
    org = Org(sqlite_server, created_keys)
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    made = org.api.post("/v1/webhooks", json={"url": url, "events": ["webhook.test"]}).json()
    script = tmp_path / "receiver.py"
    script.write_text(receiver_code())
    output = tmp_path / "receiver.out"
    env = {**os.environ, "KEYPLANE_WEBHOOK_SECRET": made["secret"], "PORT": str(port)}
    with output.open("w") as sink:
        proc = subprocess.Popen([sys.executable, str(script)], stdout=sink, stderr=sink, env=env)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                forged = httpx.post(url, content=b"{}", headers={"webhook-id": "msg_x"})
                break
            except httpx.TransportError:
                time.sleep(0.05)
        assert forged.status_code == 400

        queued = org.api.post(f"/v1/webhooks/{made['id']}/test").json()
        job = next(j for j in sqlite_server.kp.jobs.jobs if j.name == "webhook-delivery")
        for _ in range(60):
            if queued["id"] in output.read_text():
                break
            job.run(sqlite_server.clock())
            time.sleep(0.05)
        assert f"{queued['id']} webhook.test {made['id']}" in output.read_text()
        [delivery] = org.api.get(f"/v1/webhooks/{made['id']}/deliveries").json()["data"]
        assert delivery["attempts"][-1]["status_code"] == 204
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        created_keys.close_clients()
