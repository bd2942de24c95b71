"""PrometheusMetrics: what each port call counts, and labels that stay bounded whatever a
caller passes (no key, id, name or client input becomes a time series)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keyplane.metrics import PrometheusMetrics


def samples(metrics: PrometheusMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> Iterator[PrometheusMetrics]:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)  # one process here
    made = PrometheusMetrics()
    yield made
    made.close()


def test_each_call_counts_in_its_own_series(metrics: PrometheusMetrics) -> None:
    metrics.verified("VALID", 0.00002)
    metrics.verified("VALID", 0.3)
    metrics.verified("RATE_LIMITED", 0.0001)
    metrics.authenticated("DISABLED")
    metrics.cache_lookup(True)
    metrics.cache_lookup(False)
    metrics.invalidation_received(0.004)
    metrics.invalidation_received(None)
    metrics.redis_error("admit")
    metrics.limits_unavailable("quota", "closed")
    metrics.job_ran("key-expiry", "ok")
    metrics.webhook_delivery("gave_up")
    seen = samples(metrics)
    assert seen[("keyplane_verifications_total", (("code", "VALID"),))] == 2
    assert seen[("keyplane_verifications_total", (("code", "RATE_LIMITED"),))] == 1
    assert seen[("keyplane_verifications_total", (("code", "EXPIRED"),))] == 0  # there from 0
    assert seen[("keyplane_verification_seconds_count", ())] == 3
    assert seen[("keyplane_verification_seconds_bucket", (("le", "2.5e-05"),))] == 1
    assert seen[("keyplane_api_authentications_total", (("code", "DISABLED"),))] == 1
    assert seen[("keyplane_key_cache_lookups_total", (("result", "hit"),))] == 1
    assert seen[("keyplane_key_cache_lookups_total", (("result", "miss"),))] == 1
    assert seen[("keyplane_invalidations_received_total", ())] == 2
    assert seen[("keyplane_invalidation_lag_seconds_count", ())] == 1  # the stamped one
    assert seen[("keyplane_redis_errors_total", (("operation", "admit"),))] == 1
    assert (
        seen[("keyplane_limits_unavailable_total", (("decision", "closed"), ("kind", "quota")))]
        == 1
    )
    assert seen[("keyplane_job_runs_total", (("job", "key-expiry"), ("outcome", "ok")))] == 1
    assert seen[("keyplane_webhook_deliveries_total", (("result", "gave_up"),))] == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda m: m.verified("kp_live_4eC39HqLyjWDarjtT1zdp7dc", 0.0),
        lambda m: m.authenticated("Acme Corp"),
        lambda m: m.redis_error("key_01HZX3K5Q9"),
        lambda m: m.redis_error("a" * 64),  # a digest
        lambda m: m.limits_unavailable("org_123", "maybe"),
        lambda m: m.job_ran("Acme Corp", "fine"),
        lambda m: m.webhook_delivery("https://example.com/hook"),
    ],
)
def test_a_label_value_outside_its_set_is_counted_as_other(
    metrics: PrometheusMetrics, call: object
) -> None:
    before = set(samples(metrics))
    call(metrics)  # type: ignore[operator]
    values = {value for _name, labels in set(samples(metrics)) - before for _, value in labels}
    assert values <= {"other"}
    text = metrics.exposition().decode()
    for leaked in ("kp_live", "Acme", "key_01", "a" * 64, "org_123", "example.com"):
        assert leaked not in text


def test_counts_from_many_threads_are_all_there_at_the_next_scrape(
    metrics: PrometheusMetrics,
) -> None:
    """Each thread counts in a tally of its own (no lock on the hot path), flushed by a
    thread of the metrics' own and before each scrape: nothing is lost or counted twice."""

    def verify_many() -> None:
        for _ in range(20_000):
            metrics.verified("VALID", 0.0001)
            metrics.cache_lookup(True)

    threads = [threading.Thread(target=verify_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    middle = samples(metrics)  # a scrape while they count
    for thread in threads:
        thread.join()
    seen = samples(metrics)
    assert middle[("keyplane_verifications_total", (("code", "VALID"),))] <= 80_000
    assert seen[("keyplane_verifications_total", (("code", "VALID"),))] == 80_000
    assert seen[("keyplane_key_cache_lookups_total", (("result", "hit"),))] == 80_000
    assert seen[("keyplane_verification_seconds_bucket", (("le", "0.0001"),))] == 80_000
    assert seen[("keyplane_verification_seconds_bucket", (("le", "5e-05"),))] == 0
    assert seen[("keyplane_verification_seconds_sum", ())] == pytest.approx(8.0)
