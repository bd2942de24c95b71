"""GET /metrics: absent unless KEYPLANE_METRICS=true; then the Prometheus text format,
counting real verifications over HTTP by outcome, and never showing a key, a digest or an
organization's name. An optional bearer token guards it."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import ExitStack

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from keyplane.app import build
from keyplane.domain.tokens import KeyHasher
from keyplane.settings import Settings

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, Clock, Server
from support.databases import fresh_postgres

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(base_url: str, token: str | None = None) -> tuple[str, Samples]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{base_url}/metrics", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }
    return response.text, samples


def verifications(samples: Samples, code: str) -> float:
    return samples[("keyplane_verifications_total", (("code", code),))]


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def metered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server of its own with KEYPLANE_METRICS=true (the shared ones have it off)."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            path = tmp_path_factory.mktemp("metrics") / "keyplane.db"
            url, sqlite_file = f"sqlite:///{path}", path
        else:
            # A database of its own: beside the shared PostgreSQL server (limits in process,
            # no Redis) a second process on that database would be refused
            # (storage/limitsguard.py).
            request.getfixturevalue("postgres_url")
            url = stack.enter_context(fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_metrics"))
            sqlite_file = None
        clock = Clock()
        settings = Settings(database_url=url, secret_key=TEST_SECRET, run_jobs=False, metrics=True)
        server = Server(build(settings, clock=clock), clock, url, sqlite_file)
        server.start()
        yield server
        server.stop()


def test_metrics_are_off_by_default_and_answer_404(server: Server) -> None:
    assert httpx.get(f"{server.base_url}/metrics").status_code == 404
    paths = httpx.get(f"{server.base_url}/openapi.json").json()["paths"]
    assert "/metrics" not in paths


def test_verifications_are_counted_by_outcome(metered: Server) -> None:
    name = f"Metrics Org {secrets.token_hex(4)}"
    made = metered.kp.orgs.create(name, f"ops-{secrets.token_hex(4)}@metrics.test")
    owner = {"Authorization": f"Bearer {made.api_key}"}
    _, before = scrape(metered.base_url)
    with httpx.Client(base_url=metered.base_url, headers=owner, timeout=10) as http:
        issued = http.post("/v1/keys", json={"name": "metered", "scopes": ["apps:read"]})
        assert issued.status_code == 201, issued.text
        key = issued.json()["key"]
        asked = [(key, [])] * 5 + [(key, ["apps:write"])] * 2 + [("kp_live_" + "x" * 40, [])] * 3
        for presented, scopes in asked:
            answered = http.post("/v1/keys/verify", json={"key": presented, "scopes": scopes})
            assert answered.status_code == 200, answered.text
    text, after = scrape(metered.base_url)

    def grew(code: str) -> float:
        return verifications(after, code) - verifications(before, code)

    assert grew("VALID") == 5
    assert grew("INSUFFICIENT_SCOPE") == 2
    assert grew("NOT_FOUND") == 3
    assert grew("other") == 0
    latency = "keyplane_verification_seconds_count", ()
    assert after[latency] - before[latency] == 10
    # The owner's key called the API 11 times (1 create, 10 verifications), and every one
    # of its lookups but the first was a cache hit.
    authenticated = "keyplane_api_authentications_total", (("code", "VALID"),)
    assert after[authenticated] - before[authenticated] == 11
    hits = "keyplane_key_cache_lookups_total", (("result", "hit"),)
    assert after[hits] - before[hits] >= 15
    secret = KeyHasher(TEST_SECRET.encode())
    for leaked in (key, made.api_key, secret.digest(key), name, made.org.id):
        assert leaked not in text
    assert key[:12] not in text


def test_metrics_are_an_operator_s_endpoint_outside_the_api_document(metered: Server) -> None:
    assert httpx.post(f"{metered.base_url}/metrics").status_code == 405
    paths = httpx.get(f"{metered.base_url}/openapi.json").json()["paths"]
    assert "/metrics" not in paths


def test_a_metrics_token_is_required_when_set(tmp_path_factory: pytest.TempPathFactory) -> None:
    path = tmp_path_factory.mktemp("metrics-token") / "keyplane.db"
    clock = Clock()
    settings = Settings(
        database_url=f"sqlite:///{path}",
        run_jobs=False,
        metrics=True,
        metrics_token="scrape-token-for-tests",  # type: ignore[arg-type]
    )
    server = Server(build(settings, clock=clock), clock, settings.database_url, path)
    server.start()
    try:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape"}):
            refused = httpx.get(f"{server.base_url}/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"].startswith("Bearer")
        scrape(server.base_url, "scrape-token-for-tests")
    finally:
        server.stop()
