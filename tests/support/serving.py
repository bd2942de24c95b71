"""``keyplane serve`` as a real process, for the end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from conftest import CreatedKeys

KEYPLANE = str(Path(sys.executable).with_name("keyplane"))


@dataclass
class Process:
    proc: subprocess.Popen[str]
    base_url: str
    database_url: str
    log: Path

    def output(self) -> str:
        return self.log.read_text()


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any KEYPLANE_* variable, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env.update(extra)
    return env


def wait_healthy(process: Process, seconds: float = 30) -> None:
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


def serve(
    directory: Path,
    port: int,
    *extra: str,
    env: Mapping[str, str] | None = None,
    database_url: str | None = None,
) -> Iterator[Process]:
    """Runs ``keyplane serve`` until the generator is closed: on SQLite in ``directory``,
    or on ``database_url`` (its log in ``directory`` all the same)."""
    database_url = database_url or f"sqlite:///{directory / 'keyplane.db'}"
    log = directory / f"serve-{port}.log"
    with log.open("w") as sink:
        proc = subprocess.Popen(
            [KEYPLANE, "serve", "--port", str(port), "--database-url", database_url, *extra],
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(env) if env is not None else clean_env(),
            cwd=directory,
        )
    process = Process(proc, f"http://127.0.0.1:{port}", database_url, log)
    try:
        wait_healthy(process)
        yield process
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def create_org(
    directory: Path,
    database_url: str,
    env: Mapping[str, str],
    created_keys: CreatedKeys,
    name: str = "Acme",
) -> dict[str, str]:
    """``keyplane orgs create --json`` on ``database_url``: ``org_id``, ``user_id`` and the
    owner's full-access ``api_key`` (noted for the leak search)."""
    made = subprocess.run(
        [KEYPLANE, "orgs", "create", name, "--owner-email", "ops@acme.io", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=directory,
        env={**env, "KEYPLANE_DATABASE_URL": database_url},
    )
    created: dict[str, str] = json.loads(made.stdout)
    created_keys.add(created["api_key"])
    return created
