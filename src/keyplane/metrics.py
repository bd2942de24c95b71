"""Implementations of the Metrics port (domain/ports.py).

``NullMetrics`` when KEYPLANE_METRICS is off (the default): every call is a no-op method,
the cheapest thing the hot path can call.
"""

from __future__ import annotations


class NullMetrics:
    def verified(self, code: str, seconds: float) -> None:
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
