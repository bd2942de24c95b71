"""The README's nginx block, run as written: a real nginx (its own, on free ports, with its
own prefix and temporary directories, never the system's service) in front of two real
`keyplane serve` processes on one PostgreSQL database. A key verifies through it, the
client address keyplane sees is the one nginx forwards (an IP allowlist admits it, the
audit log records it, a forged X-Forwarded-For changes nothing), and with one node stopped
nginx answers through the other."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import IN_CI, POSTGRES_ADMIN_URL, TEST_SECRET, CreatedKeys, free_port
from support.databases import fresh_postgres
from support.serving import KEYPLANE, Process, clean_env, serve, stop

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


def nginx_binary() -> str:
    found = shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )
    if found is None:
        if IN_CI:
            pytest.fail("nginx is not installed (.ci/run installs it; CI=true requires it)")
        pytest.skip("nginx is not installed (apt-get install nginx; its service is not needed)")
    return found


def nginx_config(block: str, prefix: Path, listen: int, upstreams: list[int]) -> str:
    """The README's block with this test's ports, inside the least a whole config needs."""
    servers = re.findall(r"^\s*server\s+\S+:\d+;$", block, flags=re.MULTILINE)
    assert len(servers) == len(upstreams), block
    for line, port in zip(servers, upstreams, strict=True):
        block = block.replace(line, f"    server 127.0.0.1:{port};", 1)
    block, listens = re.subn(r"listen\s+80;", f"listen 127.0.0.1:{listen};", block)
    assert listens == 1, block
    temp = "\n".join(
        f"    {kind}_temp_path {prefix / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    # As root the workers would run as "nobody", which cannot enter pytest's private tmp.
    user = f"user {getpass.getuser()};\n" if os.geteuid() == 0 else ""
    return (
        f"{user}worker_processes 1;\npid {prefix / 'nginx.pid'};\n"
        f"error_log {prefix / 'error.log'} info;\n"
        "events { worker_connections 64; }\n"
        f"http {{\n    access_log off;\n{temp}\n{block}\n}}\n"
    )


@contextmanager
def nginx(directory: Path, block: str, upstreams: list[int]) -> Iterator[str]:
    binary = nginx_binary()
    prefix = directory / "nginx"
    prefix.mkdir()
    port = free_port()
    conf = prefix / "nginx.conf"
    conf.write_text(nginx_config(block, prefix, port, upstreams))
    checked = subprocess.run(
        [binary, "-t", "-p", str(prefix), "-c", str(conf)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stderr
    proc = subprocess.Popen(
        [binary, "-p", str(prefix), "-c", str(conf), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while True:
            try:
                httpx.get(f"{base}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((prefix / "error.log").read_text())
                time.sleep(0.05)
        yield base
    finally:
        proc.terminate()  # SIGTERM: nginx's fast shutdown
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
        owner = _owner_key(tmp_path, database, env, created_keys)
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


def _owner_key(
    directory: Path, database: str, env: dict[str, str], created_keys: CreatedKeys
) -> str:
    import json

    made = subprocess.run(
        [KEYPLANE, "orgs", "create", "Acme", "--owner-email", "ops@acme.io", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=directory,
        env={**env, "KEYPLANE_DATABASE_URL": database},
    )
    key: str = json.loads(made.stdout)["api_key"]
    created_keys.add(key)
    return key
