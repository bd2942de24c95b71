"""Three `keyplane serve` processes on one PostgreSQL database and one Redis, as behind a
load balancer: the machine's real servers, no stand-ins.

(1) A key limited to 100 per minute, hammered through all three nodes at once, is
admitted exactly as often as one node alone would admit it. (2) A quota of 50 gives
exactly 50 across the nodes. (3) Disabling a key, deleting one and narrowing an app
through node A are answered the new way by B and C within a second. (4) A node killed
with SIGKILL takes nothing with it that the others need: what it spent stays spent, what
it created still verifies, and the survivors go on invalidating each other.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, CreatedKeys, free_port
from support.aio import run
from support.databases import fresh_postgres
from support.serving import KEYPLANE, Process, clean_env, serve

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis]

WITHIN = 1.0  # seconds: the promise for changes


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_e2e_three") as url:
        yield url


@contextmanager
def node(directory: Path, database_url: str, redis_url: str, prefix: str) -> Iterator[Process]:
    env = clean_env(
        KEYPLANE_SECRET_KEY=TEST_SECRET,
        KEYPLANE_RUN_JOBS="false",
        KEYPLANE_REDIS_URL=redis_url,
        KEYPLANE_REDIS_PREFIX=prefix,
    )
    yield from serve(directory, free_port(), env=env, database_url=database_url)


@pytest.fixture
def cluster(
    tmp_path: Path, database: str, redis_url: str, redis_prefix: str, created_keys: CreatedKeys
) -> Iterator[Cluster]:
    made = subprocess.run(
        [KEYPLANE, "orgs", "create", "Acme", "--owner-email", "ops@acme.io", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
        env=clean_env(KEYPLANE_SECRET_KEY=TEST_SECRET, KEYPLANE_DATABASE_URL=database),
    )
    owner: str = json.loads(made.stdout)["api_key"]
    created_keys.add(owner)
    with ExitStack() as stack:
        nodes = [
            stack.enter_context(node(tmp_path, database, redis_url, redis_prefix)) for _ in range(3)
        ]
        yield stack.enter_context(Cluster(nodes, owner, created_keys))


class Cluster:
    """The owner's API through node A, verification through any node."""

    def __init__(self, nodes: list[Process], owner: str, created_keys: CreatedKeys) -> None:
        self.nodes = nodes
        self._created = created_keys
        self.api = httpx.Client(
            base_url=nodes[0].base_url, headers={"Authorization": f"Bearer {owner}"}, timeout=10
        )
        self.gateway = self.create("/v1/keys", name="gateway", scopes=["keys:verify"])["key"]

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.api.close()

    def create(self, path: str, *, through: httpx.Client | None = None, **body: Any) -> Any:
        response = (through or self.api).post(path, json=body)
        assert response.status_code == 201, response.text
        made = response.json()
        if "key" in made:
            self._created.add(made["key"])
        return made

    def verify(self, process: Process, key: str, *scopes: str) -> str:
        response = httpx.post(
            f"{process.base_url}/v1/keys/verify",
            json={"key": key, "scopes": list(scopes)},
            headers={"Authorization": f"Bearer {self.gateway}"},
            timeout=5,
        )
        assert response.status_code == 200, response.text
        code: str = response.json()["code"]
        return code

    def hammer(self, nodes: list[Process], key: str, per_node: int) -> Counter[str]:
        """``per_node`` verifications of ``key`` through each node, all at once (32 in
        flight per node), counted by answer."""
        return run(lambda: self._hammer(nodes, key, per_node))

    async def _hammer(self, nodes: list[Process], key: str, per_node: int) -> Counter[str]:
        headers = {"Authorization": f"Bearer {self.gateway}"}
        limits = httpx.Limits(max_connections=32)

        async def through(process: Process) -> list[str]:
            async with httpx.AsyncClient(
                base_url=process.base_url, headers=headers, limits=limits, timeout=30
            ) as client:

                async def one() -> str:
                    response = await client.post("/v1/keys/verify", json={"key": key})
                    assert response.status_code == 200, response.text
                    code: str = response.json()["code"]
                    return code

                return list(await asyncio.gather(*(one() for _ in range(per_node))))

        answers = await asyncio.gather(*(through(process) for process in nodes))
        return Counter(code for codes in answers for code in codes)


def within_a_second(condition: Callable[[], bool], since: float) -> None:
    while not condition():
        if time.monotonic() - since > WITHIN:
            pytest.fail(f"not within {WITHIN} s")
        time.sleep(0.002)


def test_a_rate_limit_admits_exactly_its_limit_across_three_nodes(cluster: Cluster) -> None:
    # GCRA (domain/ratelimits.py): 100 per minute is a burst of 100, then one more every
    # 0.6 s. Nothing is admitted before the hammer, so exactly 100 pass plus one for each
    # 0.6 s the hammer lasts: the count below allows those and no other.
    key = cluster.create(
        "/v1/keys",
        name="limited",
        ratelimits=[{"name": "minute", "limit": 100, "period_seconds": 60}],
    )["key"]
    started = time.monotonic()
    answers = cluster.hammer(cluster.nodes, key, per_node=150)
    drained = int((time.monotonic() - started) / 0.6)
    assert set(answers) == {"VALID", "RATE_LIMITED"}, answers
    assert 100 <= answers["VALID"] <= 100 + drained, (answers, drained)
    assert sum(answers.values()) == 450


def test_a_daily_rate_limit_admits_exactly_100_across_three_nodes(cluster: Cluster) -> None:
    # One more per 864 s: no drain during the hammer, so the count is exact.
    key = cluster.create(
        "/v1/keys",
        name="daily",
        ratelimits=[{"name": "day", "limit": 100, "period_seconds": 86400}],
    )["key"]
    answers = cluster.hammer(cluster.nodes, key, per_node=150)
    assert answers == Counter(VALID=100, RATE_LIMITED=350)


def test_a_quota_of_50_gives_exactly_50_across_three_nodes(cluster: Cluster) -> None:
    made = cluster.create("/v1/keys", name="prepaid", quota={"remaining": 50})
    answers = cluster.hammer(cluster.nodes, made["key"], per_node=40)
    assert answers == Counter(VALID=50, USAGE_EXCEEDED=70)
    # Topped up through node A: every node spends the new units, and only those.
    response = cluster.api.patch(f"/v1/keys/{made['id']}", json={"quota": {"add": 10}})
    assert response.status_code == 200, response.text
    answers = cluster.hammer(cluster.nodes, made["key"], per_node=10)
    assert answers == Counter(VALID=10, USAGE_EXCEEDED=20)


def test_changes_through_node_a_are_answered_by_b_and_c_within_a_second(
    cluster: Cluster,
) -> None:
    _a, b, c = cluster.nodes
    app = cluster.create("/v1/apps", name="models", scopes=["apps:read", "apps:write"])
    disabled = cluster.create("/v1/keys", name="to disable", scopes=["apps:read"])
    deleted = cluster.create("/v1/keys", name="to delete", scopes=["apps:read"])
    in_app = cluster.create("/v1/keys", name="in the app", app_id=app["id"])
    for other in (b, c):  # warm: each node caches the three keys
        assert cluster.verify(other, disabled["key"]) == "VALID"
        assert cluster.verify(other, deleted["key"]) == "VALID"
        assert cluster.verify(other, in_app["key"], "apps:write") == "VALID"
    api = cluster.api
    changes = [
        (
            lambda: api.patch(f"/v1/keys/{disabled['id']}", json={"status": "inactive"}),
            lambda n: cluster.verify(n, disabled["key"]) == "DISABLED",
        ),
        (
            lambda: api.delete(f"/v1/keys/{deleted['id']}"),
            lambda n: cluster.verify(n, deleted["key"]) == "NOT_FOUND",
        ),
        (
            lambda: api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]}),
            lambda n: cluster.verify(n, in_app["key"], "apps:write") == "INSUFFICIENT_SCOPE",
        ),
    ]
    for change, answered in changes:
        assert change().status_code in (200, 204)
        committed = time.monotonic()
        for other in (b, c):
            within_a_second(partial(answered, other), committed)


def test_a_node_killed_with_sigkill_takes_nothing_the_others_need(cluster: Cluster) -> None:
    a, b, c = cluster.nodes
    with httpx.Client(base_url=c.base_url, headers=cluster.api.headers, timeout=10) as through_c:
        # Node C issues a key and spends 20 of its quota, warming its cache.
        made = cluster.create("/v1/keys", through=through_c, name="on c", quota={"remaining": 50})
        assert cluster.hammer([c], made["key"], per_node=20) == Counter(VALID=20)
        app = cluster.create("/v1/apps", through=through_c, name="on c", scopes=["apps:read"])
        in_app = cluster.create("/v1/keys", through=through_c, name="app key", app_id=app["id"])
    c.proc.send_signal(signal.SIGKILL)
    c.proc.wait(timeout=10)

    # What C spent stays spent: 30 remain, across the survivors, exactly.
    assert cluster.hammer([a, b], made["key"], per_node=25) == Counter(VALID=30, USAGE_EXCEEDED=20)
    # What C created verifies on the survivors, and they still invalidate each other.
    assert cluster.verify(b, in_app["key"], "apps:read") == "VALID"
    response = cluster.api.patch(f"/v1/keys/{in_app['id']}", json={"status": "inactive"})
    assert response.status_code == 200, response.text
    within_a_second(lambda: cluster.verify(b, in_app["key"]) == "DISABLED", time.monotonic())
    # The stored count caught up with what the nodes spent (C's spends included: they were
    # made in Redis, not in C's memory), so the console and GET show the truth.
    shown = cluster.api.get(f"/v1/keys/{made['id']}").json()["quota"]["remaining"]
    assert shown == 0
