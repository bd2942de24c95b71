"""GET /v1/events/stream: invalidation notices as Server-Sent Events, over real HTTP.

A change reaches the stream within a second, on the node that made it and on any other
node of the same PostgreSQL database; a client resumes with ``Last-Event-ID`` and misses
nothing; a position the node cannot resume from, or a gap in what the node heard, is a
``reset``; each organization hears only of its own objects, and only ids, never secrets.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from keyplane.app import build
from keyplane.settings import Settings
from keyplane.storage.listener import PostgresInvalidationListener, libpq_url

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, Clock, CreatedKeys, Org, Server
from support import eventually
from support.databases import fresh_postgres
from support.sse import EventStream

WITHIN = 1.0  # seconds: the promise


def _stream(org: Org, last_event_id: str | None = None) -> EventStream:
    verifier = org.key_with("keys:verify")
    return EventStream(org.server.base_url, verifier.key, last_event_id)


def _disable(org: Org, key_id: str) -> None:
    response = org.api.patch(f"/v1/keys/{key_id}", json={"status": "inactive"})
    assert response.status_code == 200, response.text


def test_a_stream_opens_with_retry_and_ready(org: Org) -> None:
    with _stream(org) as stream:
        assert stream.response.status_code == 200
        assert stream.response.headers["content-type"].startswith("text/event-stream")
        assert stream.response.headers["cache-control"] == "no-store"
        ready, _ = stream.until("ready")
        assert ready.id is not None
        assert "-" in ready.id
        assert stream.raw[0].startswith("retry: ")


def test_a_change_is_an_invalidation_within_a_second(org: Org) -> None:
    target = org.api.create_key(scopes=["apps:read"])
    with _stream(org) as stream:
        stream.until("ready")
        _disable(org, str(target["id"]))
        event, took = stream.until("invalidate", WITHIN)
    assert event.data == {"kind": "key", "id": target["id"]}
    assert took <= WITHIN


def test_a_parents_status_change_names_each_descendant(org: Org) -> None:
    """A guard knows a cached child key only by its own id: disabling (or enabling) its
    parent must name the child and the grandchild too."""
    parent = org.api.create_key(scopes=["apps:read"])
    as_parent = org.api.as_key(str(parent["key"]))
    child = as_parent.post(f"/v1/keys/{parent['id']}/children", json={"name": "child"}).json()
    as_child = org.api.as_key(str(child["key"]))
    grandchild = as_child.post(f"/v1/keys/{child['id']}/children", json={"name": "gc"}).json()
    with _stream(org) as stream:
        stream.until("ready")
        _disable(org, str(parent["id"]))
        named = {stream.until("invalidate", WITHIN)[0].data["id"] for _ in range(3)}
    assert named == {parent["id"], child["id"], grandchild["id"]}


def test_app_and_profile_changes_are_named_by_their_ids(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "streamed"}).json()
    profile = org.api.post("/v1/profiles", json={"name": "streamed"}).json()
    with _stream(org) as stream:
        stream.until("ready")
        org.api.patch(f"/v1/apps/{app['id']}", json={"description": "changed"})
        assert stream.until("invalidate")[0].data == {"kind": "app", "id": app["id"]}
        org.api.patch(f"/v1/profiles/{profile['id']}", json={"description": "changed"})
        assert stream.until("invalidate")[0].data == {"kind": "profile", "id": profile["id"]}


def test_another_organizations_changes_never_reach_the_stream(org: Org, other_org: Org) -> None:
    theirs = other_org.api.create_key(scopes=["apps:read"])
    ours = org.api.create_key(scopes=["apps:read"])
    with _stream(org) as stream:
        stream.until("ready")
        _disable(other_org, str(theirs["id"]))
        _disable(org, str(ours["id"]))
        # One node sends in commit order: theirs came first, so it would be here first.
        event, _ = stream.until("invalidate")
        assert event.data == {"kind": "key", "id": ours["id"]}
        assert str(theirs["id"]) not in "\n".join(stream.raw)


def test_the_stream_carries_ids_and_never_a_secret(org: Org, created_keys: CreatedKeys) -> None:
    target = org.api.create_key(scopes=["apps:read"], metadata={"plan": "pro"})
    with _stream(org) as stream:
        stream.until("ready")
        _disable(org, str(target["id"]))
        stream.until("invalidate")
        org.api.delete(f"/v1/keys/{target['id']}")
        stream.until("invalidate")
        text = "\n".join(stream.raw)
    assert "kp_" not in text
    assert all(secret not in text for secret in created_keys.keys)
    assert "plan" not in text


def test_a_client_resumes_with_last_event_id_and_misses_nothing(org: Org) -> None:
    first = org.api.create_key(scopes=["apps:read"])
    second = org.api.create_key(scopes=["apps:read"])
    with _stream(org) as stream:
        position = stream.until("ready")[0].id
    _disable(org, str(first["id"]))  # while nobody listens
    _disable(org, str(second["id"]))
    with _stream(org, position) as resumed:
        missed = [resumed.until("invalidate")[0].data["id"] for _ in range(2)]
        assert resumed.until("ready")[0].id != position
    assert missed == [first["id"], second["id"]]


@pytest.mark.parametrize(
    "last_event_id", ["0123456789ab-1", "not an id", "-", "abc-99999999999999999999"]
)
def test_a_position_from_another_epoch_or_of_no_shape_is_a_reset(
    org: Org, last_event_id: str
) -> None:
    with _stream(org, last_event_id) as stream:
        reset = stream.next()
        assert reset is not None
        assert reset.event == "reset"
        assert reset.data == {"reason": "unknown-position"}
        assert stream.until("ready")[0].id == reset.id


def test_the_stream_ends_when_its_own_key_changes(org: Org) -> None:
    verifier = org.api.create_key(scopes=["keys:verify"])
    with EventStream(org.server.base_url, str(verifier["key"])) as stream:
        stream.until("ready")
        _disable(org, str(verifier["id"]))
        assert stream.until("invalidate")[0].data["id"] == verifier["id"]
        assert stream.next() is None  # ended: reconnecting checks the key again
    with EventStream(org.server.base_url, str(verifier["key"])) as again:
        assert again.response.status_code == 401


# ---- several nodes ---------------------------------------------------------------------


@pytest.fixture
def two_nodes(postgres_url: str) -> Iterator[tuple[Server, Server]]:
    """Two keyplane servers on one fresh PostgreSQL database."""
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_stream") as url:
        servers = []
        try:
            for migrate in (True, False):
                clock = Clock()
                settings = Settings(database_url=url, secret_key=TEST_SECRET, run_jobs=False)
                kp = build(settings, clock=clock, run_migrations=migrate)
                server = Server(kp, clock, url, None)
                servers.append(server)
                server.start()
                listener = kp.listener
                assert isinstance(listener, PostgresInvalidationListener)
                assert listener.listening.wait(10)
            yield servers[0], servers[1]
        finally:
            for server in servers:
                server.stop()


@pytest.mark.postgres
def test_a_change_on_one_node_reaches_the_other_nodes_stream_within_a_second(
    two_nodes: tuple[Server, Server], created_keys: CreatedKeys
) -> None:
    a, b = two_nodes
    org = Org(a, created_keys)
    target = org.api.create_key(scopes=["apps:read"])
    verifier = org.api.create_key(scopes=["keys:verify"])
    try:
        with EventStream(b.base_url, str(verifier["key"])) as stream:
            stream.until("ready")
            _disable(org, str(target["id"]))  # on node A
            event, took = stream.until("invalidate", WITHIN)
        assert event.data == {"kind": "key", "id": target["id"]}
        assert took <= WITHIN
    finally:
        created_keys.close_clients()


@pytest.mark.postgres
def test_a_gap_in_the_nodes_listener_resets_streams_and_old_positions(
    two_nodes: tuple[Server, Server], created_keys: CreatedKeys
) -> None:
    a, b = two_nodes
    org = Org(a, created_keys)
    verifier = org.api.create_key(scopes=["keys:verify"])
    listener = b.kp.listener
    assert isinstance(listener, PostgresInvalidationListener)
    try:
        with EventStream(b.base_url, str(verifier["key"])) as stream:
            before = stream.until("ready")[0].id
            connects = listener.connects
            with psycopg.connect(libpq_url(POSTGRES_ADMIN_URL), autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (listener.pid,))
            reset, _ = stream.until("reset", within=5)
            assert reset.data == {"reason": "gap"}
            assert eventually(lambda: listener.connects > connects)
        # A position from before the gap cannot be resumed: whatever was missed is unknown.
        with EventStream(b.base_url, str(verifier["key"]), before) as resumed:
            first = resumed.next()
            assert first is not None
            assert first.event == "reset"
            assert first.data == {"reason": "gap"}
    finally:
        created_keys.close_clients()


@pytest.fixture
def brisk_server(tmp_path: Path, log_capture: object) -> Iterator[Server]:
    """A server of its own whose streams beat every 0.2 s and end after 1 s."""
    url = f"sqlite:///{tmp_path / 'keyplane.db'}"
    settings = Settings(
        database_url=url,
        secret_key=TEST_SECRET,
        run_jobs=False,
        events_heartbeat_seconds=0.2,
        events_stream_max_seconds=1.0,
    )
    clock = Clock()
    server = Server(build(settings, clock=clock), clock, url, tmp_path / "keyplane.db")
    server.start()
    yield server
    server.stop()


def test_a_quiet_stream_beats_and_ends_after_its_lifetime(
    brisk_server: Server, created_keys: CreatedKeys
) -> None:
    org = Org(brisk_server, created_keys)
    try:
        with _stream(org) as stream:
            stream.until("ready")
            started = time.monotonic()
            assert stream.next() is None  # ended by the server
            lasted = time.monotonic() - started
        assert ": keep-alive" in stream.raw
        assert 0.5 <= lasted <= 3.0
    finally:
        created_keys.close_clients()
