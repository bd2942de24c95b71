"""In-process cost of per-key limits on the warm verification path.

Run: ``.venv/bin/python bench/limits.py [--calls 200000]``

Times ``Verifier.verify`` on a warm cache (as bench/verify.py does) for a key without
limits, a key with one rate limit, and a key with two rate limits and a quota (limits high
enough never to refuse), and prints each against the first. The issue's target: an
in-process limiter costs at most 10% of throughput. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from keyplane.app import build
from keyplane.services.keys import NewKey
from keyplane.settings import Settings

BIG = 1_000_000_000
CASES = {
    "no limits": {},
    "one rate limit": {"ratelimits": [{"name": "burst", "limit": BIG, "period_seconds": 1}]},
    "two rate limits and a quota": {
        "ratelimits": [
            {"name": "burst", "limit": BIG, "period_seconds": 1},
            {"name": "daily", "limit": BIG, "period_seconds": 86400},
        ],
        "quota": {"remaining": 10**12},
    },
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        url = f"sqlite:///{Path(work) / 'bench.db'}"
        kp = build(Settings(database_url=url, secret_key="bench-" + "x" * 40))
        try:
            made = kp.orgs.create("Bench", "bench@example.com")
            owner = kp.verifier.authenticate(made.api_key)
            results: dict[str, float] = {}
            for name, limits in CASES.items():
                issued = kp.keys.create(owner, NewKey(name=name, **limits))  # type: ignore[arg-type]
                results[name] = _time(kp, made.org.id, issued.secret, args.calls, args.batch)
        finally:
            kp.close()
    base = results["no limits"]
    print(f"{'case':32} {'µs/call':>8} {'throughput vs no limits':>24}")
    for name, mean in results.items():
        print(f"{name:32} {mean:8.2f} {base / mean:23.1%}")


def _time(kp: object, org_id: str, key: str, calls: int, batch: int) -> float:
    verify = kp.verifier.verify  # type: ignore[attr-defined]
    assert verify(org_id, key).valid  # noqa: S101 - the first call loads the cache
    for _ in range(10_000):
        verify(org_id, key)
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls // batch):
        start = clock()
        for _ in range(batch):
            verify(org_id, key)
        samples.append((clock() - start) / batch / 1000)
    return statistics.median(samples)


if __name__ == "__main__":
    main()
