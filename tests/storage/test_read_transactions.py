"""Reads are read-only transactions that never queue behind a writer; writes take the write
lock up front and wait for it. Real SQLite files (a second sqlite3 connection holds the lock)
and real PostgreSQL databases (a second connection holds an EXCLUSIVE table lock)."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.models import Organization
from keyplane.services.common import Principal
from keyplane.services.keys import NewKey
from keyplane.settings import Settings
from keyplane.storage.engine import normalise_url, sqlite_path
from keyplane.storage.store import WriteInReadOnly

from conftest import TEST_SECRET


def _build(database_url: str) -> Keyplane:
    return build(Settings(database_url=database_url, secret_key=TEST_SECRET))


@dataclass
class World:
    kp: Keyplane
    database_url: str
    owner: Principal
    key_id: str
    secret: str
    cold: Keyplane


@pytest.fixture
def world(database_url: str) -> Iterator[World]:
    kp = _build(database_url)
    made = kp.orgs.create("Reads", "reads@example.com")
    owner = kp.verifier.authenticate(made.api_key)
    issued = kp.keys.create(owner, NewKey(name="worker", scopes=("apps:read",)))
    cold = _build(database_url)
    yield World(kp, database_url, owner, issued.view.key.id, issued.secret, cold)
    cold.close()
    kp.close()


@contextmanager
def write_lock_held(database_url: str) -> Iterator[Callable[[], None]]:
    """Another connection holding what a keyplane write needs; yields its commit."""
    path = sqlite_path(database_url)
    if path is not None:
        conn = sqlite3.connect(path, isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")  # SQLite's one write lock
        try:
            yield lambda: conn.execute("COMMIT")
        finally:
            conn.close()
        return
    url = normalise_url(database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as pg:
        # EXCLUSIVE lets plain reads through and stops every write to the table.
        pg.execute("LOCK TABLE api_keys IN EXCLUSIVE MODE")
        yield pg.commit


def _cold_verification(w: World) -> object:
    # A second Keyplane on the same database: like a new process, its cache is empty.
    return w.cold.verifier.verify(w.owner.org_id, w.secret, ["apps:read"]).code


READS: list[tuple[str, Callable[[World], object]]] = [
    ("list keys", lambda w: len(w.kp.keys.page(w.owner, limit=10).items)),
    ("get a key", lambda w: w.kp.keys.get(w.owner, w.key_id).key.id),
    ("list apps", lambda w: w.kp.apps.page(w.owner, limit=10).items),
    ("list full-access keys", lambda w: len(w.kp.keys.full_access(w.owner).keys)),
    ("list users", lambda w: len(w.kp.users.page(w.owner, limit=10).items)),
    ("read the org", lambda w: w.kp.orgs.get(w.owner).name),
    ("a session lookup", lambda w: w.kp.signin.resume("no-such-session-token")),
    ("a cold verification", _cold_verification),
]
EXPECTED = {
    "list keys": 2,
    "get a key": None,
    "list apps": [],
    "list full-access keys": 1,
    "list users": 1,
    "read the org": "Reads",
    "a session lookup": None,
    "a cold verification": "VALID",
}


@pytest.mark.parametrize(("name", "read"), READS, ids=[name for name, _ in READS])
def test_a_read_completes_while_another_connection_holds_the_write_lock(
    world: World, name: str, read: Callable[[World], object]
) -> None:
    # Run on this thread: a read that needed the lock would wait out the 30 s busy timeout
    # and then fail, so finishing at all (with the right answer) is the proof.
    with write_lock_held(world.database_url):
        result = read(world)
    expected = EXPECTED[name] if name != "get a key" else world.key_id
    assert result == expected


def test_a_write_waits_for_the_write_lock_and_then_succeeds(world: World) -> None:
    done = threading.Event()
    outcome: list[object] = []

    def create() -> None:
        try:
            outcome.append(world.kp.keys.create(world.owner, NewKey(name="queued")))
        except Exception as exc:  # handed to the test thread, which fails on it
            outcome.append(exc)
        done.set()

    with write_lock_held(world.database_url) as commit:
        writer = threading.Thread(target=create)
        writer.start()
        assert not done.wait(0.5), f"the write went ahead of the lock holder: {outcome}"
        names = [v.key.name for v in world.kp.keys.page(world.owner, limit=10).items]
        assert "queued" not in names
        commit()
    writer.join(30)
    assert done.is_set()
    assert not isinstance(outcome[0], Exception), outcome[0]
    names = [v.key.name for v in world.kp.keys.page(world.owner, limit=10).items]
    assert "queued" in names


def test_a_write_inside_a_read_transaction_is_refused_and_nothing_is_kept(world: World) -> None:
    now = datetime.now(UTC)
    intruder = Organization("org_written_in_a_read", "Intruder", False, None, now, now)
    with pytest.raises(WriteInReadOnly), world.kp.store.read() as tx:
        tx.orgs.insert(intruder)
    with world.kp.store.read() as tx:
        assert tx.orgs.get(intruder.id) is None
    # The pooled connection is a writer again for the next unit of work.
    with world.kp.store.transaction() as tx:
        tx.orgs.insert(intruder)
    with world.kp.store.read() as tx:
        assert tx.orgs.get(intruder.id) == intruder


def test_reads_and_writes_alternate_on_one_pooled_connection(world: World) -> None:
    for round_ in range(5):
        with world.kp.store.read() as tx:
            assert tx.orgs.get(world.owner.org_id) is not None
        world.kp.keys.create(world.owner, NewKey(name=f"round {round_}"))
    assert len(world.kp.keys.page(world.owner, limit=20).items) == 7
