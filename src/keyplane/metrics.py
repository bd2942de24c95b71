"""Implementations of the Metrics port (domain/ports.py).

``NullMetrics`` when KEYPLANE_METRICS is off (the default): every call is a no-op method,
the cheapest thing the hot path can call.

``PrometheusMetrics`` when it is on, read by GET /metrics (api/routes/metrics.py). Every
label value is checked against a bounded set here, whatever the caller passes: a
verification code outside domain.verification.CODES, or a job or Redis operation that is
not a short lower-case word, is counted as "other". So no key, digest, id, organization
name or client input can become a label (each would also be a new time series).

The hot calls (a verification's code and latency, an API key's outcome, cache lookups)
cost a few list increments: each thread adds to counts of its own, and a flusher moves
them into the prometheus-client metrics every ``flush_seconds`` and before each scrape.
Calling prometheus-client itself on every verification cost ~7 µs (a lock per counter, a
loop over the histogram's buckets; measured on this 2-core machine), most of a warm
verification's budget. The price: another worker's last second may be missing from a
scrape, which Prometheus, scraping every 15 s or so, never notices. The rare calls
(invalidations, Redis errors, jobs, webhooks) go straight to prometheus-client.

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
import threading
from bisect import bisect_left
from collections.abc import Callable
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

    def leak_report(self, outcome: str) -> None:
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
_LEAK_OUTCOMES: Final = (
    "accepted",
    "rate_limited",
    "signature_refused",
    "keys_unavailable",
    "revoked",
)


def _one_of(value: str, allowed: tuple[str, ...]) -> str:
    return value if value in allowed else OTHER


def _word(value: str) -> str:
    """A job or operation name: chosen by keyplane's code, never by data; anything else
    (digits, capitals, length) is refused in case a caller ever passes an identifier."""
    return value if _WORD.fullmatch(value) else OTHER


class _Tally(threading.local):
    """One thread's hot counts since it started, registered with its last-flushed copy.
    Only the owning thread writes them, so no increment is ever lost, GIL or not; the
    flusher only reads a copy."""

    def __init__(self, width: int, every: list[tuple[list[float], list[float]]]) -> None:
        self.counts: list[float] = [0] * width
        every.append((self.counts, [0.0] * width))  # list.append: atomic


# Where each hot count sits in a tally.
_CODES: Final = (*CODES, OTHER)
_VERIFIED: Final = 0
_AUTHENTICATED: Final = _VERIFIED + len(_CODES)
_HIT: Final = _AUTHENTICATED + len(_CODES)
_MISS: Final = _HIT + 1
_BUCKETS: Final = _MISS + 1  # one per bound, then +Inf
_LATENCY_SUM: Final = _BUCKETS + len(LATENCY_BUCKETS) + 1
_WIDTH: Final = _LATENCY_SUM + 1
_VERIFIED_OTHER: Final = _VERIFIED + len(_CODES) - 1
_AUTHENTICATED_OTHER: Final = _AUTHENTICATED + len(_CODES) - 1


class PrometheusMetrics:
    content_type: Final = CONTENT_TYPE_LATEST

    def __init__(self, *, flush_seconds: float = 1.0) -> None:
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
        latency = Histogram(
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
        # What each tally slot flushes into. Every child is made here, so every code shows
        # from the start, at 0, and a rate over it has a baseline. The histogram is fed
        # counts per bucket, which prometheus-client has no public call for: its _buckets
        # (one value per bound, not cumulative) and _sum, unchanged since its first
        # releases; tests/unit/test_metrics.py reads them back through the exposition.
        self._targets: list[Callable[[float], None]] = [
            *(verifications.labels(code).inc for code in _CODES),
            *(authentications.labels(code).inc for code in _CODES),
            lookups.labels("hit").inc,
            lookups.labels("miss").inc,
            *(bucket.inc for bucket in latency._buckets),
            latency._sum.inc,
        ]
        self._verified_at = {code: _VERIFIED + i for i, code in enumerate(_CODES)}
        self._authenticated_at = {code: _AUTHENTICATED + i for i, code in enumerate(_CODES)}
        self._every: list[tuple[list[float], list[float]]] = []
        self._tally = _Tally(_WIDTH, self._every)
        self._flushing = threading.Lock()
        self._stop = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_every, args=(flush_seconds,), name="keyplane-metrics", daemon=True
        )
        self._flusher.start()
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
        self._leaks = Counter(
            "keyplane_leak_reports",
            "Leak reports (POST /v1/keys/leaked, GitHub secret scanning) by outcome: "
            "accepted, rate_limited, signature_refused, keys_unavailable; and keys revoked.",
            ["outcome"],
            registry=r,
        )
        self._deliveries = Counter(
            "keyplane_webhook_deliveries",
            "Webhook delivery attempts: delivered, failed (retried later) or gave_up.",
            ["result"],
            registry=r,
        )

    def verified(self, code: str, seconds: float) -> None:
        counts = self._tally.counts
        counts[self._verified_at.get(code, _VERIFIED_OTHER)] += 1
        # bisect_left: the first bound >= seconds, as Prometheus's "le"; past the last, +Inf.
        counts[_BUCKETS + bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[_LATENCY_SUM] += seconds

    def authenticated(self, code: str) -> None:
        self._tally.counts[self._authenticated_at.get(code, _AUTHENTICATED_OTHER)] += 1

    def cache_lookup(self, hit: bool) -> None:
        self._tally.counts[_HIT if hit else _MISS] += 1

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

    def leak_report(self, outcome: str) -> None:
        self._leaks.labels(_one_of(outcome, _LEAK_OUTCOMES)).inc()

    def flush(self) -> None:
        """Moves every thread's hot counts into the prometheus-client metrics."""
        with self._flushing:
            total = [0.0] * _WIDTH
            for counts, seen in tuple(self._every):
                now = counts.copy()
                for i in range(_WIDTH):
                    total[i] += now[i] - seen[i]
                seen[:] = now
            for target, added in zip(self._targets, total, strict=True):
                if added:
                    target(added)

    def _flush_every(self, seconds: float) -> None:
        while not self._stop.wait(seconds):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self._flusher.join(timeout=5)
        self.flush()

    def exposition(self) -> bytes:
        """The Prometheus text format: this process's metrics, or with
        PROMETHEUS_MULTIPROC_DIR, the sum over every process writing there (each other
        process as of its last flush, at most ``flush_seconds`` ago)."""
        self.flush()
        if self._directory is None:
            return generate_latest(self._registry)
        # A fresh registry per scrape, as prometheus-client's multiprocess docs do: the
        # collector reads the files at collect time.
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self._directory)  # type: ignore[no-untyped-call]  # prometheus-client 0.26 leaves it unannotated
        return generate_latest(registry)
