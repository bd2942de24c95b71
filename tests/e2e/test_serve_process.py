"""End to end: ``keyplane serve`` as a real process, ``keyplane orgs create`` beside it,
and the API driven over loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from keyplane.domain.tokens import parse_key

from conftest import CreatedKeys, free_port

pytestmark = pytest.mark.e2e
KEYPLANE = str(Path(sys.executable).with_name("keyplane"))


@dataclass
class Process:
    proc: subprocess.Popen[str]
    base_url: str
    database_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def _wait_healthy(process: Process, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.proc.poll() is not None:
            pytest.fail(f"keyplane serve exited early:\n{process.output()}")
        try:
            if httpx.get(f"{process.base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    pytest.fail(f"keyplane serve did not become healthy:\n{process.output()}")


def _serve(tmp_path: Path, *extra: str) -> Iterator[Process]:
    port = free_port()
    database_url = f"sqlite:///{tmp_path / 'keyplane.db'}"
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [KEYPLANE, "serve", "--port", str(port), "--database-url", database_url, *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
            cwd=tmp_path,
        )
    process = Process(proc, f"http://127.0.0.1:{port}", database_url, log)
    try:
        _wait_healthy(process)
        yield process
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Process]:
    yield from _serve(tmp_path)


def test_an_org_created_beside_a_running_server_drives_the_whole_key_lifecycle(
    served: Process, created_keys: CreatedKeys
) -> None:
    made = subprocess.run(
        [
            KEYPLANE,
            "orgs",
            "create",
            "Acme",
            "--owner-email",
            "ops@acme.io",
            "--database-url",
            served.database_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=Path(served.log).parent,
    )
    owner = json.loads(made.stdout)
    created_keys.add(owner["api_key"])
    headers = {"Authorization": f"Bearer {owner['api_key']}"}
    with httpx.Client(base_url=served.base_url, headers=headers, timeout=10) as api:
        assert api.get("/v1/org").json()["id"] == owner["org_id"]

        service = api.post("/v1/keys", json={"name": "gateway", "scopes": ["keys:verify"]}).json()
        worker = api.post(
            "/v1/keys", json={"name": "worker", "scopes": ["apps:read"], "expires_in_days": 7}
        ).json()
        for created in (service, worker):
            created_keys.add(created["key"])
            assert parse_key(created["key"]) is not None

        def verify(scopes: list[str]) -> str:
            response = httpx.post(
                f"{served.base_url}/v1/keys/verify",
                json={"key": worker["key"], "scopes": scopes},
                headers={"Authorization": f"Bearer {service['key']}"},
            )
            assert response.status_code == 200, response.text
            code: str = response.json()["code"]
            return code

        assert verify(["apps:read"]) == "VALID"
        assert verify(["apps:write"]) == "INSUFFICIENT_SCOPE"
        api.patch(f"/v1/keys/{worker['id']}", json={"status": "inactive"})
        assert verify([]) == "DISABLED"
        api.patch(f"/v1/keys/{worker['id']}", json={"status": "active"})
        assert verify([]) == "VALID"

        listed = api.get("/v1/keys").json()["data"]
        assert {k["id"] for k in listed} >= {service["id"], worker["id"]}
        assert worker["key"] not in json.dumps(listed)

        assert api.delete(f"/v1/keys/{worker['id']}").status_code == 204
        assert verify([]) == "NOT_FOUND"
        gone = httpx.get(
            f"{served.base_url}/v1/keys", headers={"Authorization": f"Bearer {worker['key']}"}
        )
        assert gone.status_code == 401

    time.sleep(0.2)
    output = served.output()
    assert "Application startup complete" in output
    for key in created_keys.keys:
        assert key not in output


def test_serve_demo_prints_a_working_full_access_key(
    tmp_path: Path, created_keys: CreatedKeys
) -> None:
    for process in _serve(tmp_path, "--demo"):
        output = process.output()
        assert f"keyplane is serving at {process.base_url}" in output
        key = next(word for word in output.split() if parse_key(word) is not None)
        created_keys.add(key)
        response = httpx.get(
            f"{process.base_url}/v1/keys", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
        assert response.json()["data"][0]["full_access"] is True
