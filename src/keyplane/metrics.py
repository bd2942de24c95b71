"""Implementations of the Metrics port (domain/ports.py).

``NullMetrics`` when KEYPLANE_METRICS is off (the default): every call is a no-op method,
the cheapest thing the hot path can call.

``PrometheusMetrics`` when it is on, read by GET /metrics (api/routes/metrics.py). Every
label value is checked against a bounded set here, whatever the caller passes: a
verification code outside domain.verification.CODES, or a job or Redis operation that is
not a short lower-case word, is counted as "other". So no key, digest, id, organization
name or client input can become a label (each would also be a new time series).

One process or several: the metric objects live in a registry of this instance (two apps
in one process, as in the tests, share nothing). Under ``keyplane serve --workers N`` the
parent sets PROMETHEUS_MULTIPROC_DIR before the workers start (cli/main.py); prometheus-client
then keeps every value in a file per process in that directory, and a scrape, answered by
whichever worker the connection reaches, sums the files of all of them. prometheus-client
decides between the two when it is first imported, so the directory must be in the
environment before that (the workers are spawned, not forked: they import it afresh).
"""

from __future__ import annotations

import os
import re
from typing import Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector

from keyplane.domain.verification import CODES


class NullMetrics:
    def verified(self, code: str, seconds: float) -> None:
        pass

    def authenticated(self, code: str) -> None:
        pass

    def cache_lookup(self, hit: bool) -> None:
        pass

    def invalidation_received(self, lag_seconds: float | None) -> None:
        pass

    def redis_error(self, operation: str) -> None:
        pass

    def limits_unavailable(self, kind: str, decision: str) -> None:
        pass

    def job_ran(self, job: str, outcome: str) -> None:
        pass

    def webhook_delivery(self, result: str) -> None:
        pass


OTHER: Final = "other"
# A verification takes ~10 µs warm in process and a cold load a few ms; past 1 s is an
# outage, whatever the exact figure.
LATENCY_BUCKETS: Final = (
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
)  # fmt: skip
# From commit on one node to the cache drop on another: milliseconds when all is well;
# the promise is one second.
LAG_BUCKETS: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
_WORD: Final = re.compile(r"[a-z][a-z_-]{0,39}")
_KINDS: Final = ("ratelimit", "quota")
_DECISIONS: Final = ("open", "closed")
_OUTCOMES: Final = ("ok", "error")
_DELIVERIES: Final = ("delivered", "failed", "gave_up")


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


def _word(value: str) -> str:
    """A job or operation name: chosen by keyplane's code, never by data; anything else
    (digits, capitals, length) is refused in case a caller ever passes an identifier."""
    return value if _WORD.fullmatch(value) else OTHER


class PrometheusMetrics:
    content_type: Final = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self._directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
        r = self._registry = CollectorRegistry()
        verifications = Counter(
            "keyplane_verifications",
            "Verifications (POST /v1/keys/verify) by the verdict's code.",
            ["code"],
            registry=r,
        )
        authentications = Counter(
            "keyplane_api_authentications",
            "Calls to keyplane's own API made with a key, by the outcome for that key.",
            ["code"],
            registry=r,
        )
        # Children made once: the hot path does a dict lookup, not a labels() call; and
        # every code shows from the start, at 0, so a rate over it has a baseline.
        self._verifications = {code: verifications.labels(code) for code in (*CODES, OTHER)}
        self._authentications = {code: authentications.labels(code) for code in (*CODES, OTHER)}
        self._latency = Histogram(
            "keyplane_verification_seconds",
            "Time to a verification's verdict inside keyplane (network excluded).",
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        lookups = Counter(
            "keyplane_key_cache_lookups",
            "Key records found in this process's cache (hit) or read from the database (miss).",
            ["result"],
            registry=r,
        )
        self._hit = lookups.labels("hit")
        self._miss = lookups.labels("miss")
        self._invalidations = Counter(
            "keyplane_invalidations_received",
            "Cache invalidation notices received from the database (changes made anywhere).",
            registry=r,
        )
        self._lag = Histogram(
            "keyplane_invalidation_lag_seconds",
            "From an invalidation notice being sent, just before its commit, to its arrival "
            "here (wall clocks of two machines: skew shows).",
            buckets=LAG_BUCKETS,
            registry=r,
        )
        self._redis_errors = Counter(
            "keyplane_redis_errors",
            "Redis calls that failed, by operation.",
            ["operation"],
            registry=r,
        )
        self._unavailable = Counter(
            "keyplane_limits_unavailable",
            "Verifications decided without Redis (KEYPLANE_REDIS_FAILURE): admitted "
            "unchecked (open) or refused (closed).",
            ["kind", "decision"],
            registry=r,
        )
        self._jobs = Counter(
            "keyplane_job_runs",
            "Rounds of the background jobs, by job and outcome.",
            ["job", "outcome"],
            registry=r,
        )
        self._deliveries = Counter(
            "keyplane_webhook_deliveries",
            "Webhook delivery attempts: delivered, failed (retried later) or gave_up.",
            ["result"],
            registry=r,
        )

    def verified(self, code: str, seconds: float) -> None:
        child = self._verifications.get(code)
        (child if child is not None else self._verifications[OTHER]).inc()
        self._latency.observe(seconds)

    def authenticated(self, code: str) -> None:
        child = self._authentications.get(code)
        (child if child is not None else self._authentications[OTHER]).inc()

    def cache_lookup(self, hit: bool) -> None:
        (self._hit if hit else self._miss).inc()

    def invalidation_received(self, lag_seconds: float | None) -> None:
        self._invalidations.inc()
        if lag_seconds is not None:
            # A clock behind the sender's would make it negative: 0, not a dropped sample.
            self._lag.observe(max(lag_seconds, 0.0))

    def redis_error(self, operation: str) -> None:
        self._redis_errors.labels(_word(operation)).inc()

    def limits_unavailable(self, kind: str, decision: str) -> None:
        self._unavailable.labels(_one_of(kind, _KINDS), _one_of(decision, _DECISIONS)).inc()

    def job_ran(self, job: str, outcome: str) -> None:
        self._jobs.labels(_word(job), _one_of(outcome, _OUTCOMES)).inc()

    def webhook_delivery(self, result: str) -> None:
        self._deliveries.labels(_one_of(result, _DELIVERIES)).inc()

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's metrics, or with
        PROMETHEUS_MULTIPROC_DIR, the sum over every process writing there."""
        if self._directory is None:
            return generate_latest(self._registry)
        # A fresh registry per scrape, as prometheus-client's multiprocess docs do: the
        # collector reads the files at collect time.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._directory)  # type: ignore[no-untyped-call]  # prometheus-client 0.26 leaves it unannotated
        return generate_latest(registry)
