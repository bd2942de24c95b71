"""The PostgreSQL LimitsGuard: without Redis, rate limits and quotas and several processes
serving one database exclude each other, whichever comes first, also when they race."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.errors import LimitsNeedRedis
from keyplane.domain.scopes import ScopeSet
from keyplane.services.apps import AppChanges
from keyplane.services.common import Principal
from keyplane.services.keys import KeyChanges, NewKey
from keyplane.services.orgs import OrgChanges
from keyplane.settings import Settings
from keyplane.storage.limitsguard import HOLDERS, NAMESPACE, PostgresLimitsGuard

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET
from support.databases import fresh_postgres

pytestmark = pytest.mark.postgres

BURST = [{"name": "burst", "limit": 10, "period_seconds": 1}]


@dataclass
class Database:
    url: str
    kp: Keyplane  # a process that has not joined (as the CLI's commands): it only writes
    owner: Principal

    def guard(self) -> PostgresLimitsGuard:
        return PostgresLimitsGuard(self.url)

    def holders(self) -> int:
        with psycopg.connect(self.url.replace("+psycopg", "")) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
                "AND classid = %s AND objid = %s AND objsubid = 2 AND database = "
                "(SELECT oid FROM pg_database WHERE datname = current_database())",
                (NAMESPACE, HOLDERS),
            ).fetchone()
        assert row is not None
        return int(row[0])


@pytest.fixture
def db(postgres_url: str) -> Iterator[Database]:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_guard") as url:
        kp = build(Settings(database_url=url, secret_key=TEST_SECRET))
        try:
            made = kp.orgs.create("Guarded", "guard@example.com")
            yield Database(url, kp, Principal(made.org.id, made.owner.id, ScopeSet.full()))
        finally:
            kp.close()


def test_one_process_may_have_limits_and_so_may_its_start(db: Database) -> None:
    first = db.guard()
    first.join()
    try:
        db.kp.keys.create(db.owner, NewKey(name="limited", ratelimits=BURST))
    finally:
        first.leave()
    again = db.guard()
    again.join()  # alone, with a limit: exact
    again.leave()


def test_with_two_processes_every_way_of_giving_a_limit_is_refused(db: Database) -> None:
    key = db.kp.keys.create(db.owner, NewKey(name="plain")).view.key.id
    app = db.kp.apps.create(db.owner, "plain-app")
    a, b = db.guard(), db.guard()
    a.join()
    b.join()  # no limit yet: both start
    try:
        assert db.holders() == 2
        attempts = {
            "key create, rate limit": lambda: db.kp.keys.create(
                db.owner, NewKey(name="k", ratelimits=BURST)
            ),
            "key create, quota": lambda: db.kp.keys.create(
                db.owner, NewKey(name="k", quota={"remaining": 5})
            ),
            "key patch, rate limit": lambda: db.kp.keys.update(
                db.owner, key, KeyChanges(ratelimits=BURST)
            ),
            "key patch, quota": lambda: db.kp.keys.update(
                db.owner, key, KeyChanges(quota={"remaining": 5})
            ),
            "app create": lambda: db.kp.apps.create(db.owner, "limited", ratelimits=BURST),
            "app patch": lambda: db.kp.apps.update(db.owner, app.id, AppChanges(ratelimits=BURST)),
            "org patch": lambda: db.kp.orgs.update(db.owner, OrgChanges(ratelimits=BURST)),
        }
        for name, attempt in attempts.items():
            with pytest.raises(LimitsNeedRedis) as refused:
                attempt()
            assert refused.value.processes == 2, name
            assert "KEYPLANE_REDIS_URL" in str(refused.value)
        # Removing limits is always allowed, and so is any other change.
        db.kp.orgs.update(db.owner, OrgChanges(ratelimits=[]))
        db.kp.keys.update(db.owner, key, KeyChanges(description="still fine"))
    finally:
        b.leave()
    assert db.holders() == 1
    db.kp.keys.update(db.owner, key, KeyChanges(ratelimits=BURST))  # one process: exact
    a.leave()


def test_a_process_is_refused_while_another_serves_and_limits_exist(db: Database) -> None:
    db.kp.apps.create(db.owner, "limited", ratelimits=BURST)
    a = db.guard()
    a.join()
    try:
        with pytest.raises(LimitsNeedRedis) as refused:
            db.guard().join()
        assert refused.value.processes == 2
        assert db.holders() == 1  # the refused one holds nothing
    finally:
        a.leave()
    with pytest.raises(LimitsNeedRedis):
        db.guard().join(processes=2)  # serve --workers 2 with a limit
    assert db.holders() == 0


def test_a_start_racing_a_new_limit_waits_for_it_and_is_refused(db: Database) -> None:
    a = db.guard()
    a.join()
    b = db.guard()
    outcome: list[BaseException | None] = []
    try:
        with db.kp.store.transaction() as tx:
            # Node A is giving a key a limit: it counted one holder (itself) ...
            a.limits_added(tx, "ratelimits")
            joining = threading.Thread(target=lambda: outcome.append(_joined(b)))
            joining.start()
            time.sleep(0.3)
            # ... and node B, starting meanwhile, waits for that change to commit.
            assert joining.is_alive()
            org = tx.orgs.get(db.owner.org_id)
            assert org is not None
            from dataclasses import replace

            from keyplane.domain.ratelimits import check_ratelimits

            tx.orgs.update(replace(org, ratelimits=check_ratelimits("r", BURST)))
        joining.join(timeout=10)
        assert len(outcome) == 1
        assert isinstance(outcome[0], LimitsNeedRedis)
    finally:
        a.leave()
        b.leave()


def test_a_killed_process_stops_counting(db: Database) -> None:
    with subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from keyplane.storage.limitsguard import PostgresLimitsGuard\n"
            "PostgresLimitsGuard(sys.argv[1]).join()\n"
            "print('joined', flush=True)\n"
            "time.sleep(60)\n",
            db.url,
        ],
        stdout=subprocess.PIPE,
        text=True,
    ) as holder:
        _kill_at_last(holder, db)


def _kill_at_last(holder: subprocess.Popen[str], db: Database) -> None:
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "joined"
        a = db.guard()
        a.join()
        assert db.holders() == 2
        with pytest.raises(LimitsNeedRedis):
            db.kp.apps.create(db.owner, "limited", ratelimits=BURST)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        deadline = time.monotonic() + 10
        while db.holders() > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        db.kp.apps.create(db.owner, "limited", ratelimits=BURST)
        a.leave()
    finally:
        holder.kill()
        holder.wait(10)


def _joined(guard: PostgresLimitsGuard) -> BaseException | None:
    try:
        guard.join()
    except LimitsNeedRedis as exc:
        return exc
    return None


def test_a_lost_lock_connection_is_replaced_and_the_lock_retaken(db: Database) -> None:
    guard = PostgresLimitsGuard(db.url, ping_seconds=0.05)
    guard.join()
    try:
        assert db.holders() == 1
        with psycopg.connect(db.url.replace("+psycopg", ""), autocommit=True) as admin:
            # The guard's backend: the session holding the shared lock.
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                "AND classid = %s AND objid = %s AND objsubid = 2 AND granted",
                (NAMESPACE, HOLDERS),
            )
        deadline = time.monotonic() + 10
        seen_gone = False
        while time.monotonic() < deadline:
            count = db.holders()
            seen_gone = seen_gone or count == 0
            if seen_gone and count == 1:
                break
            time.sleep(0.02)
        assert db.holders() == 1, "the lock was not retaken"
    finally:
        guard.leave()
    assert db.holders() == 0
