"""Each organization's audit events form one hash chain: appended in order under the chain
head's lock, never forked by two nodes writing at once, and carried over by the migration
from logs written before the chain existed. Real SQLite files and PostgreSQL databases."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select, text

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.audit import GENESIS
from keyplane.services.auditing import AuditService
from keyplane.settings import Settings
from keyplane.storage.engine import make_engine
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import audit_chain_heads, audit_events

from conftest import TEST_SECRET
from support.databases import migrate_to

ORG = "org_01cccccccccccccccccccccccc"
T0 = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


def _node(database_url: str) -> Keyplane:
    return build(Settings(database_url=database_url, secret_key=TEST_SECRET))


def _chain(engine: Engine, org_id: str) -> list[tuple[int, str, str]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(audit_events.c.seq, audit_events.c.prev_hash, audit_events.c.hash)
            .where(audit_events.c.org_id == org_id)
            .order_by(audit_events.c.seq)
        )
        return [(int(seq), str(prev), str(own)) for seq, prev, own in rows]


def test_events_are_numbered_from_one_and_each_names_the_previous_hash(
    database_url: str,
) -> None:
    kp = _node(database_url)
    try:
        made = kp.orgs.create("Acme", "ada@acme.io")
        owner = kp.verifier.authenticate(made.api_key)
        for n in range(3):
            kp.apps.create(owner, f"app {n}")
        engine = make_engine(database_url)
        chain = _chain(engine, made.org.id)
        with engine.connect() as conn:
            head = conn.execute(select(audit_chain_heads)).one()
        engine.dispose()
        assert [seq for seq, _, _ in chain] == list(range(1, len(chain) + 1))
        assert [prev for _, prev, _ in chain] == [GENESIS] + [own for _, _, own in chain[:-1]]
        assert (head.org_id, head.seq, head.hash) == (made.org.id, len(chain), chain[-1][2])
        assert kp.audit.verify() == []
    finally:
        kp.close()


def test_two_nodes_writing_at_once_never_fork_a_chain(database_url: str) -> None:
    """Two processes' worth of services (own engines, own pools) create apps in the same
    organization from several threads; every event gets its own seq and the chain holds."""
    nodes = [_node(database_url), _node(database_url)]
    try:
        made = nodes[0].orgs.create("Acme", "ada@acme.io")
        owner = nodes[0].verifier.authenticate(made.api_key)
        start = threading.Barrier(4)
        failures: list[BaseException] = []

        def write(node: Keyplane, worker: int) -> None:
            start.wait()
            try:
                for n in range(10):
                    node.apps.create(owner, f"app {worker}-{n}")
            except BaseException as exc:  # reported below, with the others
                failures.append(exc)

        threads = [threading.Thread(target=write, args=(nodes[w % 2], w)) for w in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        engine = make_engine(database_url)
        chain = _chain(engine, made.org.id)
        engine.dispose()
        assert len(chain) >= 40
        assert [seq for seq, _, _ in chain] == list(range(1, len(chain) + 1))
        assert nodes[1].audit.verify(made.org.id) == []
    finally:
        for node in nodes:
            node.close()


def test_the_migration_chains_the_events_written_before_it(database_url: str) -> None:
    engine = make_engine(database_url)
    try:
        migrate_to(engine, "0004")
        with engine.begin() as conn:
            for n, actor in enumerate(["key_01aa", "usr_01bb", "operator"]):
                conn.execute(
                    text(
                        "INSERT INTO audit_events (id, org_id, actor, action, target_type, "
                        "target_id, details, created_at) VALUES (:id, :org, :actor, "
                        "'app.create', 'app', :target, :details, :t)"
                    ),
                    {
                        # Ids out of time order: the chain follows time, then id.
                        "id": f"evt_0{3 - n}",
                        "org": ORG,
                        "actor": actor,
                        "target": f"app_0{n}",
                        "details": '{"name": "billing", "scopes": ["a:read"]}',
                        "t": T0 + timedelta(minutes=n),
                    },
                )
        migrate_to(engine, "head")
        store = SqlStore(engine)
        assert AuditService(store).verify() == []
        with engine.connect() as conn:
            rows = conn.execute(
                select(audit_events.c.id, audit_events.c.seq, audit_events.c.actor_type).order_by(
                    audit_events.c.seq
                )
            ).all()
        assert [tuple(r) for r in rows] == [
            ("evt_03", 1, "key"),
            ("evt_02", 2, "user"),
            ("evt_01", 3, "system"),
        ]
        migrate_to(engine, "0004", down=True)
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM audit_events")).scalar() == 3
    finally:
        engine.dispose()
