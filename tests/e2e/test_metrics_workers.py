"""GET /metrics of `keyplane serve --workers 2` on PostgreSQL: whichever worker answers a
scrape, it shows the sum of both (prometheus-client's multiprocess mode), and the private
directory holding the counts is gone once serve exits."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keyplane.storage.invalidations import CHANNEL
from keyplane.storage.listener import libpq_url

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, CreatedKeys, free_port
from support.databases import fresh_postgres
from support.serving import KEYPLANE, clean_env, serve

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def database(postgres_url: str) -> Iterator[str]:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_e2e_metrics") as url:
        yield url


def scrape(base_url: str) -> tuple[str, Samples]:
    """One scrape on a connection of its own: the kernel hands it to either worker."""
    response = httpx.get(f"{base_url}/metrics", timeout=10)
    assert response.status_code == 200, response.text
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def verify(base_url: str, gateway: str, key: str) -> str:
    response = httpx.post(
        f"{base_url}/v1/keys/verify",
        json={"key": key},
        headers={"Authorization": f"Bearer {gateway}"},
        timeout=5,
    )
    assert response.status_code == 200, response.text
    code: str = response.json()["code"]
    return code


def test_a_scrape_of_any_worker_shows_the_sum_of_both(
    tmp_path: Path, database: str, created_keys: CreatedKeys
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    env = clean_env(
        KEYPLANE_SECRET_KEY=TEST_SECRET,
        KEYPLANE_RUN_JOBS="false",
        KEYPLANE_METRICS="true",
        TMPDIR=str(scratch),
    )
    made = subprocess.run(
        [KEYPLANE, "orgs", "create", "Metered Org", "--owner-email", "ops@metered.io", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        cwd=tmp_path,
        env={**env, "KEYPLANE_DATABASE_URL": database},
    )
    owner = json.loads(made.stdout)["api_key"]
    created_keys.add(owner)
    served = serve(tmp_path, free_port(), "--workers", "2", env=env, database_url=database)
    process = next(served)
    base = process.base_url
    try:
        [directory] = scratch.iterdir()  # serve's private directory, one file set per worker
        assert directory.name.startswith("keyplane-metrics-")
        assert directory.stat().st_mode & 0o777 == 0o700
        with httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {owner}"}, timeout=10
        ) as api:
            made_key = api.post("/v1/keys", json={"name": "target", "scopes": ["apps:read"]})
            assert made_key.status_code == 201, made_key.text
            target = made_key.json()
            created_keys.add(target["key"])
            for _ in range(30):  # each on a connection of its own
                assert verify(base, owner, target["key"]) == "VALID"
            for _ in range(10):
                assert verify(base, owner, "kp_live_unknown") == "NOT_FOUND"
            # Each worker flushes its counts every second (keyplane/metrics.py): after that,
            # every scrape shows both workers' counts summed, whichever answers it.
            time.sleep(1.5)
            counted = set()
            for _ in range(8):
                text, samples = scrape(base)
                counted.add(
                    (
                        samples[("keyplane_verifications_total", (("code", "VALID"),))],
                        samples[("keyplane_verifications_total", (("code", "NOT_FOUND"),))],
                    )
                )
                for leaked in (owner, target["key"], "Metered Org", target["id"]):
                    assert leaked not in text
            assert counted == {(30.0, 10.0)}
            pids = {p.stem.rsplit("_", 1)[-1] for p in directory.iterdir()}
            assert len(pids) == 2, pids  # a file set per worker

            # A change: each worker's listener hears each of its notices, so the sum over
            # both grows by twice what a listener of this test's own hears, whichever worker
            # answers the scrape.
            _, before = scrape(base)
            with psycopg.connect(libpq_url(database), autocommit=True) as probe:
                probe.execute(f"LISTEN {CHANNEL}")
                changed = api.patch(f"/v1/keys/{target['id']}", json={"status": "inactive"})
                assert changed.status_code == 200, changed.text
                heard = len(list(probe.notifies(timeout=1)))
            assert heard >= 1
            received = "keyplane_invalidations_received_total", ()
            lagged = "keyplane_invalidation_lag_seconds_count", ()
            deadline = time.monotonic() + 5
            while True:
                _, after = scrape(base)
                if after[received] - before[received] == 2 * heard:
                    break
                assert time.monotonic() < deadline, (before[received], after[received], heard)
                time.sleep(0.05)
            assert after[lagged] - before[lagged] == 2 * heard  # every notice carried its time
            lag = "keyplane_invalidation_lag_seconds_sum", ()
            assert 0 <= after[lag] - before[lag] < 2 * heard  # under a second each
    finally:
        served.close()
    assert list(scratch.iterdir()) == []  # removed at exit
