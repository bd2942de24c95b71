"""End to end: ``keyplane serve`` as a real process, ``keyplane orgs create`` beside it,
and the API driven over loopback."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from keyplane.domain.tokens import parse_key

from conftest import CreatedKeys, free_port
from support.serving import KEYPLANE, Process, clean_env, serve

pytestmark = pytest.mark.e2e


def _serve(tmp_path: Path, *extra: str) -> Iterator[Process]:
    yield from serve(tmp_path, free_port(), *extra)


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


def demo_key(output: str) -> str:
    """The key of the last ``export KP=…`` line ``serve --demo`` printed."""
    keys = re.findall(r"^  export KP=(\S+)$", output, flags=re.MULTILINE)
    assert keys, output
    assert parse_key(keys[-1]) is not None
    return keys[-1]


def test_serve_demo_prints_a_working_full_access_key_that_expires_in_a_day(
    tmp_path: Path, created_keys: CreatedKeys
) -> None:
    for process in _serve(tmp_path, "--demo"):
        output = process.output()
        assert f"keyplane is serving at {process.base_url}" in output
        key = demo_key(output)
        created_keys.add(key)
        response = httpx.get(
            f"{process.base_url}/v1/keys", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200
        (listed,) = response.json()["data"]
        assert listed["full_access"] is True
        expires = datetime.fromisoformat(listed["expires_at"])
        assert timedelta(hours=23) < expires - datetime.now(UTC) <= timedelta(hours=24)


def test_restarting_the_demo_keeps_its_setup_and_mints_no_key_without_expiry(
    tmp_path: Path, created_keys: CreatedKeys
) -> None:
    port = free_port()
    for _ in range(2):
        for process in serve(tmp_path, port, "--demo"):
            key = demo_key(process.output())
            created_keys.add(key)
    for process in serve(tmp_path, port, "--demo"):
        key = demo_key(process.output())
        created_keys.add(key)
        with httpx.Client(
            base_url=process.base_url, headers={"Authorization": f"Bearer {key}"}
        ) as api:
            keys = api.get("/v1/keys").json()["data"]
            assert len(keys) == 3
            assert all(k["expires_at"] is not None for k in keys)
            custom = [r for r in api.get("/v1/resources").json()["data"] if not r["builtin"]]
            assert [(r["name"], r["actions"]) for r in custom] == [
                ("models", ["read", "write", "deploy"]),
                ("scanner", ["write"]),
            ]
            apps = api.get("/v1/apps").json()["data"]
            assert [(a["name"], a["scopes"]) for a in apps] == [("acme", ["models:read"])]
            profiles = api.get("/v1/profiles").json()["data"]
            assert [p["name"] for p in profiles] == ["free-tier"]
            presets = {p["name"]: p["scopes"] for p in api.get("/v1/presets").json()["data"]}
            assert presets["Model scanner CLI"] == ["models:read", "models:write", "scanner:write"]
            assert set(presets) == {"Model scanner CLI", "Read-only dashboard", "CI deployer"}


def test_serve_on_a_busy_port_fails_before_touching_the_database(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = subprocess.run(
            [
                KEYPLANE,
                "serve",
                "--port",
                str(port),
                "--demo",
                "--database-url",
                f"sqlite:///{tmp_path / 'keyplane.db'}",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=clean_env(),
            cwd=tmp_path,
        )
    assert run.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in run.stderr
    assert "serving at" not in run.stdout
    assert "KP=" not in run.stdout
    assert list(tmp_path.iterdir()) == [], "no database, no secret file"


def test_the_startup_log_lists_the_security_settings_without_the_secret(tmp_path: Path) -> None:
    secret = "s" * 40
    env = clean_env(
        KEYPLANE_SECRET_KEY=secret, KEYPLANE_TRUSTED_PROXIES="10.0.0.0/8", KEYPLANE_ENV="production"
    )
    for process in serve(tmp_path, free_port(), env=env):
        output = process.output()
        assert (
            "security settings: env=production; secret from KEYPLANE_SECRET_KEY; "
            "secure cookies on; trusted proxies: 10.0.0.0/8; interactive docs off"
        ) in output
        assert secret not in output
        assert httpx.get(f"{process.base_url}/docs").status_code == 404
        assert httpx.get(f"{process.base_url}/openapi.json").status_code == 200
