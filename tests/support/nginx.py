"""A real nginx for the end-to-end tests: Debian's binary, never its service, started on a
free port with its own prefix, pid file, logs and temporary directories, around a block of
``http``-level configuration taken from the documentation (only its ports templated)."""

from __future__ import annotations

import getpass
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import IN_CI, free_port


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
    """``block`` with this test's ports (each ``server host:port;`` line of its upstreams in
    order, and its one ``listen 80;``), inside the least a whole config needs."""
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
    """nginx serving ``block`` (its upstreams on ``upstreams``), until the block ends; yields
    its base URL once it answers."""
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
