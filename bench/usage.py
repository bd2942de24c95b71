"""Benchmark: what usage counting and last-used tracking cost a verification.

Run: ``.venv/bin/python bench/usage.py [--calls 200000] [--batch 1000] [--rounds 7]``
and over HTTP: ``.venv/bin/python bench/usage.py --http [--duration 5] [--rounds 3]``

One process, one throw-away SQLite database, one warm key cache, and two verifiers over
them: **on** as ``keyplane serve`` builds it (last-used times and usage counts buffered,
their flush threads running), and **off**, the same verifier with neither (as
``KEYPLANE_USAGE_COUNTING=false`` plus a last-used recorder that records nothing). Each
call does what ``POST /v1/keys/verify`` does besides HTTP and JSON: authenticate the
calling key, check its ``keys:verify`` scope, judge the presented key against a scope. So
each call counts twice when on: the caller's authentication and the verdict.

The two alternate in rounds of ``--calls`` calls, so that noise from other processes falls
on both alike; the figure per side is its best round (the least disturbed). The HTTP stack
costs several times a verification (bench/verify.py), so over HTTP the ratio is nearer 1
than here: this is the stricter measure. The target: on / off >= 0.90.

``--http`` measures the same two sides over HTTP instead: two servers in this process (uvicorn
in a thread each, one SQLite database each), and wrk with bench/verify.lua against
``POST /v1/keys/verify`` on one then the other, alternating, for ``--rounds`` rounds.

It is a benchmark, not a test: a missed target is reported, never an error exit.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from keyplane.app import build, create_app
from keyplane.container import Keyplane
from keyplane.domain.tokens import KeyHasher
from keyplane.services.verifying import Verifier
from keyplane.settings import Settings
from keyplane.usage import NullUsageCounter
from verify import LUA_SCRIPT, free_port, run_wrk  # bench/verify.py, beside this script

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SCOPE = "api_keys:read"
TARGET = 0.90


class NoLastUsed:
    """A last-used recorder that records nothing: the baseline."""

    def touch(self, key_id: str, at: datetime) -> None:
        pass


def one_call(verifier: Verifier, org_id: str, caller: str, target: str) -> Callable[[], None]:
    scopes = [SCOPE]

    def call() -> None:
        principal = verifier.principal_of(verifier.load(caller))
        principal.require("keys:verify")
        verdict = verifier.judge(principal.org_id, verifier.load(target), scopes)
        if not verdict.valid:  # never on a warm cache; a failure here is a broken setup
            raise RuntimeError(f"verification answered {verdict.code}")

    call()  # the first call loads the cache
    return call


def round_us(call: Callable[[], None], calls: int, batch: int) -> float:
    """Mean µs per call over ``calls`` calls, timed in batches."""
    clock = time.perf_counter_ns
    total = 0
    for _ in range(max(1, calls // batch)):
        start = clock()
        for _ in range(batch):
            call()
        total += clock() - start
    return total / (max(1, calls // batch) * batch) / 1000


def quiet(kp: Keyplane, settings: Settings) -> Verifier:
    """``kp``'s verifier without last-used times or usage counts."""
    hasher = KeyHasher(settings.pepper())
    return Verifier(
        kp.store, hasher, kp.cache, kp.clock, NoLastUsed(), NullUsageCounter(), kp.limiter
    )


def in_process(args: argparse.Namespace, tmp: str) -> dict[str, list[float]]:
    """µs per call, per round, per side."""
    settings = Settings(database_url=f"sqlite:///{tmp}/bench.db")
    kp = build(settings)
    kp.start()  # the flush threads run during the measurement, as in a server
    try:
        made = kp.orgs.create("Bench org", "bench@example.com")
        key = made.api_key  # full access: it may verify, and it is the key verified
        sides = {
            "on": one_call(kp.verifier, made.org.id, key, key),
            "off": one_call(quiet(kp, settings), made.org.id, key, key),
        }
        for call in sides.values():  # warm the interpreter's caches
            round_us(call, min(args.calls, 20_000), args.batch)
        rounds: dict[str, list[float]] = {"on": [], "off": []}
        for index in range(args.rounds):
            order = ("on", "off") if index % 2 == 0 else ("off", "on")
            for side in order:
                rounds[side].append(round_us(sides[side], args.calls, args.batch))
        kp.counter.flush()
    finally:
        kp.close()
    return rounds


class ThreadServer:
    def __init__(self, kp: Keyplane) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            create_app(keyplane=kp),
            host="127.0.0.1",
            port=self.port,
            access_log=False,
            log_level="warning",
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def over_http(args: argparse.Namespace, tmp: str) -> dict[str, list[float]]:
    """Requests per second, per round, per side (converted to µs per request)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    with ExitStack() as stack:
        servers: dict[str, tuple[ThreadServer, dict[str, str]]] = {}
        for side in ("on", "off"):
            settings = Settings(database_url=f"sqlite:///{tmp}/{side}.db")
            kp = build(settings)
            made = kp.orgs.create("Bench org", "bench@example.com")
            if side == "off":
                kp.verifier = quiet(kp, settings)
            server = stack.enter_context(ThreadServer(kp))
            env = {
                **os.environ,
                "KEYPLANE_BENCH_VERIFIER_KEY": made.api_key,
                "KEYPLANE_BENCH_TARGET_KEY": made.api_key,
                "KEYPLANE_BENCH_SCOPE": SCOPE,
            }
            servers[side] = (server, env)
        rounds: dict[str, list[float]] = {"on": [], "off": []}
        for index in range(args.rounds + 1):  # round 0 warms both up and is not kept
            order = ("on", "off") if index % 2 == 0 else ("off", "on")
            for side in order:
                server, env = servers[side]
                result = run_wrk(
                    wrk,
                    f"http://127.0.0.1:{server.port}/v1/keys/verify",
                    duration=args.duration if index else 2,
                    connections=args.connections,
                    threads=1,
                    script=LUA_SCRIPT,
                    env=env,
                )
                if result.non_2xx_3xx or result.socket_errors:
                    raise SystemExit(f"{side}: {result.non_2xx_3xx} non-2xx answers")
                if index:
                    rounds[side].append(1e6 / result.requests_per_sec)
    return rounds


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000, help="calls per round and side")
    parser.add_argument("--batch", type=int, default=1_000, help="calls per timed batch")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side")
    parser.add_argument("--http", action="store_true", help="over HTTP with wrk")
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per round")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="keyplane-bench-usage-") as tmp:
        rounds = over_http(args, tmp) if args.http else in_process(args, tmp)

    best = {side: min(values) for side, values in rounds.items()}
    per_second = {side: 1e6 / us for side, us in best.items()}
    ratio = per_second["on"] / per_second["off"]
    how = (
        f"HTTP, wrk -c{args.connections}, {args.duration} s per round"
        if args.http
        else f"in-process, {args.calls:,} calls per round"
    )
    print(f"usage counting benchmark: {args.rounds} rounds per side, {how}")
    for side in ("off", "on"):
        median = statistics.median(rounds[side])
        print(
            f"  {side:3}  {per_second[side]:>10,.0f} calls/s  best {best[side]:.2f} µs/call"
            f"  median {median:.2f} µs/call  rounds (µs/call): "
            + ", ".join(f"{us:.2f}" for us in rounds[side])
        )
    verdict = "yes" if ratio >= TARGET else "NO"
    print(f"  on / off throughput: {ratio:.1%} (target >= {TARGET:.0%}: {verdict})")
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"usage-{'http' if args.http else 'local'}-{stamp}.json"
    figures = {"rounds_us": rounds, "calls_per_second": per_second, "ratio": ratio}
    out.write_text(json.dumps({"args": vars(args), **figures}, indent=2))
    print(f"  saved {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
