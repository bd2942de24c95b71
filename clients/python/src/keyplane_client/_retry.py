"""When to send a request again, and after how long.

Retried:
- 429 and 503 answers, for every operation. keyplane refuses those before doing anything
  (a refused verification spends neither rate nor quota; a 503 rolled back), so even a
  POST, a verification included, is safe to repeat. ``Retry-After`` is honoured; one
  longer than ``max_retry_after`` (a quota that refills tomorrow) is not waited for: the
  error is raised at once, carrying it.
- Connection errors where the request never left (refused, DNS, connect timeout, no
  connection free in the pool), for every operation.
- Other connection errors (reset, read timeout) only for operations that are safe to send
  twice: GET, PUT, DELETE, and a verification with ``cost=0``. A POST or PATCH that may
  have reached the server is NEVER sent again: a second ``keys.create`` would issue a
  second key, a second ``rotate`` answers 409, a second verification would spend the
  quota twice. The caller gets :class:`APIConnectionError` and decides. (A repeated DELETE
  may answer 404 when the first one did arrive: the object is gone either way.)

The wait is exponential with jitter (half fixed, half random, so that many clients
refused together do not come back together), capped at ``max_delay``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import httpx

from keyplane_client._errors import retry_after_seconds

RETRY_STATUSES = frozenset((429, 503))

# Raised before a single byte of the request was written: safe to send again.
_NOT_SENT: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0

    def after_status(self, attempt: int, response: httpx.Response) -> float | None:
        """Seconds to wait before sending again after ``response``, or None to stop."""
        if attempt >= self.max_retries or response.status_code not in RETRY_STATUSES:
            return None
        retry_after = retry_after_seconds(response.headers)
        if retry_after is None:
            if _out_of_quota(response):
                return None  # no refill is coming: asking again changes nothing
            return self._backoff(attempt)
        if retry_after > self.max_retry_after:
            return None
        # The server's time plus a little jitter: never earlier than it asked.
        return retry_after + random.uniform(0, min(1.0, retry_after / 10 + 0.1))  # noqa: S311 - jitter, not a secret

    def after_error(
        self, attempt: int, error: httpx.TransportError, *, resendable: bool
    ) -> float | None:
        """Seconds to wait before sending again after a transport error, or None to stop."""
        if attempt >= self.max_retries:
            return None
        if isinstance(error, _NOT_SENT) or resendable:
            return self._backoff(attempt)
        return None

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.initial_delay * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not a secret


def _out_of_quota(response: httpx.Response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("code") == "USAGE_EXCEEDED"
