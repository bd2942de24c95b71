"""Crash consistency: ``keyplane serve`` is SIGKILLed twenty times while clients create and
delete keys concurrently over loopback, on SQLite and on PostgreSQL.

After every restart: each key whose secret reached a client verifies, each acknowledged
deletion still answers NOT_FOUND. After every kill the database passes an integrity check:
SQLite's ``PRAGMA integrity_check`` and ``foreign_key_check``; on PostgreSQL ``amcheck``
over every B-tree index of the schema (heapallindexed). On both, every unit of work is whole:
unique digests, every key row has its ``key.create`` audit event, no deleted key has a row.

A SIGKILL tests the process dying, not the machine: committed pages are in the OS cache and
survive it with any ``synchronous`` setting (a power cut is what FULL is for).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from keyplane.storage.engine import make_engine, sqlite_path

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, free_port
from support.databases import fresh_postgres

pytestmark = pytest.mark.e2e
KEYPLANE = str(Path(sys.executable).with_name("keyplane"))
ROUNDS = 20
OPERATIONS = 1000  # spread over the rounds: each round is killed after about its share
CLIENTS = 6
BTREE_INDEXES = (
    "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    " JOIN pg_am a ON a.oid = c.relam JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE a.amname = 'btree' AND n.nspname = 'public'"
)


@dataclass
class Ledger:
    """What the clients were told. Only acknowledged outcomes count; an operation whose
    answer was lost to the kill may or may not have happened."""

    alive: dict[str, str] = field(default_factory=dict)  # key id -> secret, 201 received
    deleted: dict[str, str] = field(default_factory=dict)  # key id -> secret, 204 received
    uncertain: set[str] = field(default_factory=set)  # a deletion whose answer was lost
    created_this_round: dict[str, str] = field(default_factory=dict)
    deleted_this_round: dict[str, str] = field(default_factory=dict)
    completed: int = 0
    attempted: int = 0
    surprises: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Setup:
    database_url: str
    env: dict[str, str]
    workdir: Path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Setup]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    if request.param == "sqlite":
        yield Setup(f"sqlite:///{tmp_path / 'keyplane.db'}", env, tmp_path)
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
    env["KEYPLANE_SECRET_KEY"] = TEST_SECRET
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_crash") as url:
        yield Setup(url, env, tmp_path)


def _start(setup: Setup, round_: int) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    log = setup.workdir / f"serve-{round_}.log"
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            [KEYPLANE, "serve", "--port", str(port), "--database-url", setup.database_url],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=setup.env,
            cwd=setup.workdir,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"keyplane serve exited in round {round_}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base, log
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    proc.kill()
    pytest.fail(f"keyplane serve did not become healthy in round {round_}:\n{log.read_text()}")


def _verdicts(base: str, owner: str, keys: dict[str, str]) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {owner}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        verdicts = {}
        for key_id, secret in keys.items():
            response = client.post("/v1/keys/verify", json={"key": secret})
            assert response.status_code == 200, response.text
            verdicts[key_id] = response.json()["code"]
        return verdicts


def _client_loop(base: str, owner: str, ledger: Ledger, round_: int, seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule, not a secret
    headers = {"Authorization": f"Bearer {owner}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        n = 0
        while True:
            n += 1
            with ledger.lock:
                ledger.attempted += 1
                victim = None
                if ledger.alive and rng.random() < 0.4:
                    victim = rng.choice(sorted(ledger.alive))
                    secret = ledger.alive.pop(victim)
            try:
                if victim is None:
                    response = client.post("/v1/keys", json={"name": f"r{round_}-{seed}-{n}"})
                else:
                    response = client.delete(f"/v1/keys/{victim}")
            except httpx.TransportError:  # the server was killed: this answer is lost
                if victim is not None:
                    with ledger.lock:
                        ledger.uncertain.add(victim)
                return
            with ledger.lock:
                ledger.completed += 1
                if victim is None and response.status_code == 201:
                    body = response.json()
                    ledger.alive[body["id"]] = body["key"]
                    ledger.created_this_round[body["id"]] = body["key"]
                elif victim is not None and response.status_code == 204:
                    ledger.deleted[victim] = secret
                    ledger.deleted_this_round[victim] = secret
                else:
                    ledger.surprises.append(f"{response.status_code} {response.text[:200]}")


def _integrity_problems(database_url: str) -> list[str]:
    problems: list[str] = []
    path = sqlite_path(database_url)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            if path is not None:
                result = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
                if result != ["ok"]:
                    problems.append(f"integrity_check: {result}")
                broken = list(conn.exec_driver_sql("PRAGMA foreign_key_check"))
                if broken:
                    problems.append(f"foreign_key_check: {broken}")
            else:
                conn.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS amcheck")
                check = text("SELECT bt_index_check(CAST(:i AS regclass), true)")
                for index in conn.execute(text(BTREE_INDEXES)).scalars().all():
                    conn.execute(check, {"i": index})  # raises on corruption
            checks = {
                "duplicate digests": "SELECT count(*) - count(DISTINCT digest) FROM api_keys",
                "key rows without their key.create event": (
                    "SELECT count(*) FROM api_keys k WHERE NOT EXISTS (SELECT 1 FROM "
                    "audit_events e WHERE e.action = 'key.create' AND e.target_id = k.id)"
                ),
                "deleted keys with a row": (
                    "SELECT count(*) FROM audit_events e JOIN api_keys k ON k.id = e.target_id"
                    " WHERE e.action = 'key.delete'"
                ),
            }
            for name, query in checks.items():
                count = conn.execute(text(query)).scalar_one()
                if count:
                    problems.append(f"{name}: {count}")
    finally:
        engine.dispose()
    return problems


def test_sigkill_during_concurrent_creations_and_deletions_loses_no_acknowledged_change(
    setup: Setup,
) -> None:
    made = subprocess.run(
        [
            KEYPLANE,
            "orgs",
            "create",
            "Crash",
            "--owner-email",
            "crash@example.com",
            "--database-url",
            setup.database_url,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=setup.env,
        cwd=setup.workdir,
    )
    owner = json.loads(made.stdout)["api_key"]
    rng = random.Random(6)  # noqa: S311 - reproducible kill moments, not a secret
    ledger = Ledger()
    for round_ in range(ROUNDS + 1):
        proc, base, log = _start(setup, round_)
        try:
            # What the last round acknowledged survived its kill and this restart.
            verdicts = _verdicts(base, owner, ledger.created_this_round)
            lost = {k for k, code in verdicts.items() if code != "VALID"}
            lost -= set(ledger.deleted) | ledger.uncertain
            assert not lost, f"round {round_}: acknowledged keys lost: {sorted(lost)}"
            verdicts = _verdicts(base, owner, ledger.deleted_this_round)
            back = {k for k, code in verdicts.items() if code != "NOT_FOUND"}
            assert not back, f"round {round_}: acknowledged deletions undone: {sorted(back)}"
            if round_ == ROUNDS:
                break
            ledger.created_this_round, ledger.deleted_this_round = {}, {}
            share = OPERATIONS // ROUNDS
            kill_after = ledger.completed + rng.randint(share // 2, share * 3 // 2)
            clients = [
                threading.Thread(
                    target=_client_loop, args=(base, owner, ledger, round_, round_ * 100 + c)
                )
                for c in range(CLIENTS)
            ]
            for client in clients:
                client.start()
            while ledger.completed < kill_after:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.001)
            proc.send_signal(signal.SIGKILL)  # mid-flight: the clients are still sending
            proc.wait()
            for client in clients:
                client.join(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert not ledger.surprises, ledger.surprises
        problems = _integrity_problems(setup.database_url)
        assert not problems, f"after the kill of round {round_}: {problems}"

    # The final restart: every acknowledged outcome of every round, at once.
    assert ledger.attempted >= OPERATIONS
    proc, base, _log = _start(setup, ROUNDS + 1)
    try:
        verdicts = _verdicts(base, owner, ledger.alive)
        assert {k for k, code in verdicts.items() if code != "VALID"} == set()
        verdicts = _verdicts(base, owner, ledger.deleted)
        assert {k for k, code in verdicts.items() if code != "NOT_FOUND"} == set()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    assert len(ledger.alive) > 0
    assert len(ledger.deleted) > 0
