"""The README's nginx block, run as written: a real nginx (its own, on free ports, with its
own prefix and temporary directories, never the system's service) in front of two real
`keyplane serve` processes on one PostgreSQL database. A key verifies through it, the
client address keyplane sees is the one nginx forwards (an IP allowlist admits it, the
audit log records it, a forged X-Forwarded-For changes nothing), and with one node stopped
nginx answers through the other."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, CreatedKeys, free_port
from support.databases import fresh_postgres
from support.nginx import nginx
from support.serving import Process, clean_env, create_org, serve, stop

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/e2e/test_readme_nodes.py"
# The client reaches nginx from this loopback address; nginx reaches keyplane from
# 127.0.0.1, the only trusted proxy. So the address keyplane must see is this one.
CLIENT = "127.0.0.2"


def nginx_block() -> str:
    text = README.read_text()
    start = text.index("```nginx\n", text.index(MARKER)) + len("```nginx\n")
    return text[start : text.index("```", start)]


def test_the_readme_nginx_block_balances_two_nodes_and_forwards_the_client_address(
    tmp_path: Path, postgres_url: str, created_keys: CreatedKeys
) -> None:
    block = nginx_block()
    with ExitStack() as stack:
        database = stack.enter_context(fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_nginx"))
        env = clean_env(
            KEYPLANE_SECRET_KEY=TEST_SECRET,
            KEYPLANE_RUN_JOBS="false",
            KEYPLANE_TRUSTED_PROXIES="127.0.0.1",
            KEYPLANE_SECURE_COOKIES="false",
        )
        nodes: list[Process] = []
        for _ in range(2):
            served = serve(tmp_path, free_port(), env=env, database_url=database)
            nodes.append(next(served))
            stack.callback(served.close)
        owner = create_org(tmp_path, database, env, created_keys)["api_key"]
        base = stack.enter_context(nginx(tmp_path, block, [_port(n) for n in nodes]))
        client = stack.enter_context(
            httpx.Client(
                base_url=base,
                headers={"Authorization": f"Bearer {owner}"},
                transport=httpx.HTTPTransport(local_address=CLIENT),
                timeout=10,
            )
        )

        # A key that may only be used from the client's address, and a gateway key.
        made = client.post(
            "/v1/keys", json={"name": "from the client only", "ip_allowlist": [CLIENT]}
        )
        assert made.status_code == 201, made.text
        pinned = made.json()
        created_keys.add(pinned["key"])
        gateway = client.post("/v1/keys", json={"name": "gateway", "scopes": ["keys:verify"]})
        created_keys.add(gateway.json()["key"])
        as_pinned = {"Authorization": f"Bearer {pinned['key']}"}

        # Through nginx, round robin over both nodes: verification, and the pinned key
        # admitted by its allowlist (keyplane saw the forwarded address, not nginx's).
        for _ in range(6):
            verdict = client.post(
                "/v1/keys/verify",
                json={"key": pinned["key"], "ip": CLIENT},
                headers={"Authorization": f"Bearer {gateway.json()['key']}"},
            )
            assert verdict.json()["code"] == "VALID", verdict.text
            assert client.get("/v1/keys", headers=as_pinned).status_code == 200
        # A client cannot claim another address: nginx appends the one it sees, and
        # keyplane reads from the right.
        forged = client.get("/v1/keys", headers={**as_pinned, "X-Forwarded-For": "203.0.113.9"})
        assert forged.status_code == 200
        # Straight to a node, from 127.0.0.1: outside the allowlist.
        direct = httpx.get(f"{nodes[0].base_url}/v1/keys", headers=as_pinned, timeout=10)
        assert direct.status_code == 403, direct.text

        # The audit log records the forwarded client address.
        events = client.get("/v1/audit-events", params={"limit": 20}).json()["data"]
        created = next(e for e in events if e["target"]["id"] == pinned["id"])
        assert created["client_ip"] == CLIENT, created

        # One node stopped: nginx answers through the other.
        stop(nodes[0].proc)
        for _ in range(4):
            assert client.get("/v1/keys", headers=as_pinned).status_code == 200


def _port(process: Process) -> int:
    return int(process.base_url.rsplit(":", 1)[1])
