"""Several `keyplane serve` processes on one PostgreSQL database, as behind a load
balancer: a key disabled, a key deleted and an app narrowed through one node are answered
the new way by every other node within a second (and by every worker of a `--workers`
server); SQLite refuses `--workers` above one, saying why."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path

import httpx
import pytest

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, CreatedKeys, free_port
from support.databases import fresh_postgres
from support.serving import KEYPLANE, Process, clean_env, serve

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

WITHIN = 1.0  # seconds: the promise
ENV = clean_env(KEYPLANE_SECRET_KEY=TEST_SECRET, KEYPLANE_RUN_JOBS="false")


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_e2e_nodes") as url:
        yield url


@contextmanager
def node(directory: Path, database_url: str, *extra: str) -> Iterator[Process]:
    yield from serve(directory, free_port(), *extra, env=ENV, database_url=database_url)


def owner_key(database_url: str, directory: Path, created_keys: CreatedKeys) -> str:
    made = subprocess.run(
        [KEYPLANE, "orgs", "create", "Acme", "--owner-email", "ops@acme.io", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=directory,
        env={**ENV, "KEYPLANE_DATABASE_URL": database_url},
    )
    key: str = json.loads(made.stdout)["api_key"]
    created_keys.add(key)
    return key


class Client:
    """The owner's API on one node, and verification through any node."""

    def __init__(self, process: Process, key: str, created_keys: CreatedKeys) -> None:
        self.http = httpx.Client(
            base_url=process.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=10
        )
        self._created = created_keys

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.http.close()

    def create(self, path: str, **body: object) -> dict[str, str]:
        response = self.http.post(path, json=body)
        assert response.status_code == 201, response.text
        made: dict[str, str] = response.json()
        if "key" in made:
            self._created.add(made["key"])
        return made


def verify(process: Process, gateway: str, key: str, *scopes: str) -> str:
    """The verdict's code, on a connection of its own (with --workers: any worker)."""
    response = httpx.post(
        f"{process.base_url}/v1/keys/verify",
        json={"key": key, "scopes": list(scopes)},
        headers={"Authorization": f"Bearer {gateway}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    code: str = response.json()["code"]
    return code


def within_a_second(condition: Callable[[], bool], since: float) -> float:
    while not condition():
        if time.monotonic() - since > WITHIN:
            pytest.fail(f"not within {WITHIN} s")
        time.sleep(0.002)
    return time.monotonic() - since


def test_changes_through_one_node_are_answered_by_the_others_within_a_second(
    tmp_path: Path, database: str, created_keys: CreatedKeys
) -> None:
    owner = owner_key(database, tmp_path, created_keys)
    with ExitStack() as nodes:
        a, b, c = (nodes.enter_context(node(tmp_path, database)) for _ in range(3))
        api = nodes.enter_context(Client(a, owner, created_keys))
        gateway = api.create("/v1/keys", name="gateway", scopes=["keys:verify"])["key"]
        app = api.create("/v1/apps", name="models", scopes=["apps:read", "apps:write"])
        disabled = api.create("/v1/keys", name="to disable", scopes=["apps:read"])
        deleted = api.create("/v1/keys", name="to delete", scopes=["apps:read"])
        in_app = api.create("/v1/keys", name="in the app", app_id=app["id"])
        for other in (b, c):  # warm: each node caches the three keys
            assert verify(other, gateway, disabled["key"]) == "VALID"
            assert verify(other, gateway, deleted["key"]) == "VALID"
            assert verify(other, gateway, in_app["key"], "apps:write") == "VALID"

        changes = [
            (
                lambda: api.http.patch(f"/v1/keys/{disabled['id']}", json={"status": "inactive"}),
                lambda n: verify(n, gateway, disabled["key"]) == "DISABLED",
            ),
            (
                lambda: api.http.delete(f"/v1/keys/{deleted['id']}"),
                lambda n: verify(n, gateway, deleted["key"]) == "NOT_FOUND",
            ),
            (
                lambda: api.http.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]}),
                lambda n: verify(n, gateway, in_app["key"], "apps:write") == "INSUFFICIENT_SCOPE",
            ),
        ]
        for change, answered in changes:
            assert change().status_code in (200, 204)
            committed = time.monotonic()
            for other in (b, c):
                within_a_second(partial(answered, other), committed)
        for process in (a, b, c):
            assert "cache invalidation listener: LISTEN keyplane_cache" in process.output()


def test_every_worker_of_a_workers_server_answers_a_change_within_a_second(
    tmp_path: Path, database: str, created_keys: CreatedKeys
) -> None:
    owner = owner_key(database, tmp_path, created_keys)
    with (
        node(tmp_path, database, "--workers", "2") as served,
        Client(served, owner, created_keys) as api,
    ):
        gateway = api.create("/v1/keys", name="gateway", scopes=["keys:verify"])["key"]
        target = api.create("/v1/keys", name="target", scopes=["apps:read"])
        # Each request on a connection of its own: the kernel hands them to either worker.
        for _ in range(20):
            assert verify(served, gateway, target["key"]) == "VALID"
        response = api.http.patch(f"/v1/keys/{target['id']}", json={"status": "inactive"})
        assert response.status_code == 200
        committed = time.monotonic()
        within_a_second(
            lambda: all(verify(served, gateway, target["key"]) == "DISABLED" for _ in range(10)),
            committed,
        )
        for _ in range(20):
            assert verify(served, gateway, target["key"]) == "DISABLED"
        assert served.output().count("Application startup complete") == 2


def test_workers_on_sqlite_are_refused_saying_why(tmp_path: Path) -> None:
    refused = subprocess.run(
        [KEYPLANE, "serve", "--port", str(free_port()), "--workers", "2"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
        env=clean_env(),
    )
    assert refused.returncode == 2
    assert "--workers 2 needs PostgreSQL" in refused.stderr
    assert "LISTEN/NOTIFY" in refused.stderr
    assert not (tmp_path / "keyplane.db").exists()  # refused before touching anything


def _serve_refused(
    directory: Path, database_url: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KEYPLANE, "serve", "--port", str(free_port()), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=directory,
        env={**ENV, "KEYPLANE_DATABASE_URL": database_url},
    )


def test_workers_without_redis_are_refused_while_a_limit_exists(
    tmp_path: Path, database: str, created_keys: CreatedKeys
) -> None:
    owner = owner_key(database, tmp_path, created_keys)
    with node(tmp_path, database) as alone, Client(alone, owner, created_keys) as api:
        # One process: a limit is exact, and allowed.
        api.create(
            "/v1/apps", name="limited", ratelimits=[{"name": "m", "limit": 5, "period_seconds": 60}]
        )
        # A second node would count it in its own memory too: refused, saying why.
        refused = _serve_refused(tmp_path, database)
        assert refused.returncode == 2, refused.stderr
        assert "1 other keyplane serve process already serve" in refused.stderr
        assert "KEYPLANE_REDIS_URL" in refused.stderr
    refused = _serve_refused(tmp_path, database, "--workers", "3")
    assert refused.returncode == 2, refused.stderr
    assert "--workers 3 would count them in 3 separate memories" in refused.stderr
    assert "up to 300" in refused.stderr


def test_a_limit_is_refused_while_workers_serve_without_redis(
    tmp_path: Path, database: str, created_keys: CreatedKeys
) -> None:
    owner = owner_key(database, tmp_path, created_keys)
    with (
        node(tmp_path, database, "--workers", "2") as served,
        Client(served, owner, created_keys) as api,
    ):
        response = api.http.patch(
            "/v1/org", json={"ratelimits": [{"name": "m", "limit": 5, "period_seconds": 60}]}
        )
        assert response.status_code == 409, response.text
        assert response.json()["type"] == "urn:keyplane:problem:limits-need-redis"
        # The supervisor and its workers (the second may still be starting).
        assert re.search(r": [23] serve this one", response.json()["detail"])
