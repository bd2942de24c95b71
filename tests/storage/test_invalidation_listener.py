"""Two keyplane processes' worth of services on one PostgreSQL database: a change through
one is forgotten by the other's key cache within a second (LISTEN/NOTIFY sent inside the
changing transaction; a key's notice also reaches its delegated descendants), a rolled-back
change tells nobody anything, and a listener whose connection is killed drops its cache
and comes back."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import psycopg
import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.invalidation import unstamped
from keyplane.services.apps import AppChanges
from keyplane.services.children import NewChild
from keyplane.services.common import Principal
from keyplane.services.keys import KeyChanges, NewKey
from keyplane.services.profiles import ProfileChanges
from keyplane.settings import Settings
from keyplane.storage.invalidations import CHANNEL
from keyplane.storage.listener import PostgresInvalidationListener, libpq_url

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET
from support.databases import fresh_postgres

pytestmark = pytest.mark.postgres

WITHIN = 1.0  # seconds: the promise


def eventually(condition: Callable[[], bool], within: float = WITHIN) -> float:
    """Seconds until ``condition`` held, polled every few milliseconds; fails past ``within``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > within:
            pytest.fail(f"not within {within} s")
        time.sleep(0.005)
    return time.monotonic() - started


def listener(kp: Keyplane) -> PostgresInvalidationListener:
    assert isinstance(kp.listener, PostgresInvalidationListener)
    return kp.listener


@dataclass
class Nodes:
    url: str
    a: Keyplane
    b: Keyplane
    owner: Principal


@pytest.fixture
def nodes(postgres_url: str) -> Iterator[Nodes]:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_nodes") as url:
        a = build(Settings(database_url=url, secret_key=TEST_SECRET))
        b = build(Settings(database_url=url, secret_key=TEST_SECRET), run_migrations=False)
        try:
            for node in (a, b):
                node.start(listen=True)
                assert listener(node).listening.wait(10)
            made = a.orgs.create("Nodes", "nodes@example.com")
            yield Nodes(url, a, b, a.verifier.authenticate(made.api_key))
        finally:
            a.close()
            b.close()


def _issue(nodes: Nodes, **new: object) -> tuple[str, str]:
    issued = nodes.a.keys.create(nodes.owner, NewKey(name="k", **new))  # type: ignore[arg-type]
    return issued.view.key.id, issued.secret


def _code(kp: Keyplane, nodes: Nodes, secret: str, *scopes: str) -> str:
    return kp.verifier.verify(nodes.owner.org_id, secret, scopes).code


def test_a_key_disabled_through_one_node_stops_verifying_on_the_other_within_a_second(
    nodes: Nodes,
) -> None:
    key_id, secret = _issue(nodes)
    assert _code(nodes.b, nodes, secret) == "VALID"  # warm on B
    nodes.a.keys.update(nodes.owner, key_id, KeyChanges(status="inactive"))
    assert _code(nodes.a, nodes, secret) == "DISABLED"  # A applied its own change at commit
    eventually(lambda: _code(nodes.b, nodes, secret) == "DISABLED")


def test_a_key_deleted_through_one_node_is_not_found_on_the_other_within_a_second(
    nodes: Nodes,
) -> None:
    key_id, secret = _issue(nodes)
    assert _code(nodes.b, nodes, secret) == "VALID"
    nodes.a.keys.delete(nodes.owner, key_id)
    eventually(lambda: _code(nodes.b, nodes, secret) == "NOT_FOUND")


def test_a_parent_disabled_through_one_node_stops_its_grandchild_on_the_other(
    nodes: Nodes,
) -> None:
    """Delegated keys: B caches only the grandchild; the parent's one notice reaches it
    (its record folds every ancestor in, and is forgotten with any of them)."""
    key_id, secret = _issue(nodes, scopes=("apps:read",))
    parent = nodes.a.verifier.authenticate(secret)
    child = nodes.a.children.create(parent, key_id, NewChild(name="child"))
    grandchild = nodes.a.children.create(
        nodes.a.verifier.authenticate(child.secret), child.view.key.id, NewChild(name="grand")
    )
    assert grandchild.view.key.depth == 2
    assert _code(nodes.b, nodes, grandchild.secret, "apps:read") == "VALID"

    nodes.a.keys.update(nodes.owner, key_id, KeyChanges(status="inactive"))
    eventually(lambda: _code(nodes.b, nodes, grandchild.secret) == "DISABLED")

    nodes.a.keys.update(nodes.owner, key_id, KeyChanges(status="active"))
    eventually(lambda: _code(nodes.b, nodes, grandchild.secret) == "VALID")
    nodes.a.keys.delete(nodes.owner, key_id)
    eventually(lambda: _code(nodes.b, nodes, grandchild.secret) == "NOT_FOUND")


def test_an_app_narrowed_through_one_node_narrows_its_keys_on_the_other(nodes: Nodes) -> None:
    app = nodes.a.apps.create(nodes.owner, "gateway", "", ("apps:read", "apps:write"))
    _, secret = _issue(nodes, app_id=app.id)
    assert _code(nodes.b, nodes, secret, "apps:write") == "VALID"
    nodes.a.apps.update(nodes.owner, app.id, AppChanges(scopes=("apps:read",)))
    eventually(lambda: _code(nodes.b, nodes, secret, "apps:write") == "INSUFFICIENT_SCOPE")


def test_a_profile_changed_through_one_node_is_reloaded_by_the_other(nodes: Nodes) -> None:
    profile = nodes.a.profiles.create(nodes.owner, "free", "", {"rpm": 60})
    _, secret = _issue(nodes, profile_id=profile.id)

    def rpm() -> object:
        verdict = nodes.b.verifier.verify(nodes.owner.org_id, secret)
        assert verdict.key is not None
        assert verdict.key.profile is not None
        return verdict.key.profile.settings["rpm"]

    assert rpm() == 60
    nodes.a.profiles.update(nodes.owner, profile.id, ProfileChanges(settings={"rpm": 10}))
    eventually(lambda: rpm() == 10)


@pytest.mark.parametrize("kind", ["key", "app", "profile", "org"])
def test_every_kind_of_notice_reaches_the_other_node(nodes: Nodes, kind: str) -> None:
    app = nodes.a.apps.create(nodes.owner, f"app-{kind}", "", ("apps:read",))
    profile = nodes.a.profiles.create(nodes.owner, f"profile-{kind}", "", {})
    key_id, secret = _issue(nodes, app_id=app.id, profile_id=profile.id)
    assert _code(nodes.b, nodes, secret) == "VALID"
    entry = nodes.b.verifier.load(secret)
    assert entry is not None
    ident = {"key": key_id, "app": app.id, "profile": profile.id, "org": nodes.owner.org_id}
    with nodes.a.store.transaction() as tx:
        getattr(tx.invalidations, kind)(ident[kind])
    eventually(lambda: nodes.b.cache.get(entry.digest) is None)


def _fail_after_notice(kp: Keyplane, key_id: str) -> None:
    with kp.store.transaction() as tx:
        tx.invalidations.key(key_id)
        raise RuntimeError("the change fails after its notice was recorded")


def test_a_rolled_back_change_notifies_nobody(nodes: Nodes) -> None:
    key_id, secret = _issue(nodes)
    for node in (nodes.a, nodes.b):
        assert _code(node, nodes, secret) == "VALID"
    entry = nodes.b.verifier.load(secret)
    assert entry is not None
    with psycopg.connect(libpq_url(nodes.url), autocommit=True) as probe:
        probe.execute(f"LISTEN {CHANNEL}")
        heard_before = listener(nodes.b).received
        with pytest.raises(RuntimeError):
            _fail_after_notice(nodes.a, key_id)
        with nodes.a.store.transaction() as tx:
            tx.invalidations.key("key_marker")
        # Notices arrive in commit order: once the marker is here, nothing came before it.
        heard = [unstamped(n.payload)[0] for n in probe.notifies(timeout=5, stop_after=1)]
    assert heard == ["key:key_marker"]
    eventually(lambda: listener(nodes.b).received == heard_before + 1)
    assert nodes.b.cache.get(entry.digest) is entry
    assert nodes.a.cache.get(entry.digest) is not None  # nor was it applied locally


def test_a_killed_listener_connection_drops_the_cache_and_reconnects(nodes: Nodes) -> None:
    key_id, secret = _issue(nodes)
    assert _code(nodes.b, nodes, secret) == "VALID"
    assert len(nodes.b.cache) > 0  # type: ignore[arg-type]
    watcher = listener(nodes.b)
    killed = watcher.pid
    connects = watcher.connects
    with psycopg.connect(libpq_url(POSTGRES_ADMIN_URL), autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (killed,))
    eventually(lambda: watcher.connects == connects + 1, within=5)
    assert watcher.pid not in (None, killed)
    assert len(nodes.b.cache) == 0  # type: ignore[arg-type]
    # Listening again: the next change reaches B as before.
    assert _code(nodes.b, nodes, secret) == "VALID"
    nodes.a.keys.update(nodes.owner, key_id, KeyChanges(status="inactive"))
    eventually(lambda: _code(nodes.b, nodes, secret) == "DISABLED")


def test_a_notice_recorded_twice_in_one_transaction_is_sent_once(nodes: Nodes) -> None:
    with psycopg.connect(libpq_url(nodes.url), autocommit=True) as probe:
        probe.execute(f"LISTEN {CHANNEL}")
        with nodes.a.store.transaction() as tx:
            tx.invalidations.app("app_twice")
            tx.invalidations.app("app_twice")
            tx.invalidations.key("key_last")
        heard = [unstamped(n.payload)[0] for n in probe.notifies(timeout=5, stop_after=2)]
    assert heard == ["app:app_twice", "key:key_last"]
