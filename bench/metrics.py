"""Benchmark: what KEYPLANE_METRICS=true costs a verification.

Run: ``.venv/bin/python bench/metrics.py [--calls 100000] [--rounds 7]``
and over HTTP: ``.venv/bin/python bench/metrics.py --http [--duration 5] [--rounds 3]``

Two keyplanes in this process, one throw-away SQLite database each, warm key caches:
**off** (NullMetrics, the default) and **on** (PrometheusMetrics, its flush thread
running). In process, each call is the verify route's whole exchange without HTTP
(``api.routes.verify.answer``: authenticate the caller, parse the body, judge, serialise,
with every metric call the route makes). ``--http`` serves both with uvicorn in threads
and drives ``POST /v1/keys/verify`` with wrk (bench/verify.lua), as bench/usage.py does.

In process, each round is timed in this thread's CPU time. The sides alternate in
rounds, so noise from other processes falls on both alike; each side's figure is its best
round. The target: on / off >= 0.95 in process (over HTTP, where a request costs several
times the exchange, the ratio is nearer 1). A benchmark, not a test: a missed target is
reported, never an error exit.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import orjson

from keyplane.api.routes.verify import ValidBodies, answer
from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.settings import Settings
from usage import SCOPE, ThreadServer  # bench/usage.py, beside this script
from verify import LUA_SCRIPT, run_wrk

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET = 0.95
SIDES = ("off", "on")


def keyplane(tmp: str, side: str) -> tuple[Keyplane, str]:
    settings = Settings(database_url=f"sqlite:///{tmp}/{side}.db", metrics=side == "on")
    kp = build(settings)
    made = kp.orgs.create("Bench org", "bench@example.com")
    return kp, made.api_key  # full access: it may verify, and it is the key verified


def one_call(kp: Keyplane, key: str) -> Callable[[], Awaitable[None]]:
    bodies = ValidBodies()
    authorization = f"Bearer {key}"
    body = orjson.dumps({"key": key, "scopes": [SCOPE]})

    async def call() -> None:
        response = await answer(kp.verifier, bodies, authorization, "application/json", body)
        if response.status_code != 200 or b'"VALID"' not in response.body:
            raise RuntimeError("the verification did not answer VALID: a broken setup")

    return call


def round_us(call: Callable[[], Awaitable[None]], calls: int) -> float:
    # This thread's CPU time, not the wall clock: on a machine shared with other work, time
    # spent descheduled is not the code's cost.
    async def run() -> float:
        start = time.thread_time_ns()
        for _ in range(calls):
            await call()
        return (time.thread_time_ns() - start) / calls / 1000

    return asyncio.run(run())


def in_process(args: argparse.Namespace, tmp: str) -> dict[str, list[float]]:
    with ExitStack() as stack:
        calls = {}
        for side in SIDES:
            kp, key = keyplane(tmp, side)
            kp.start()
            stack.callback(kp.close)
            calls[side] = one_call(kp, key)
            round_us(calls[side], min(args.calls, 20_000))  # warm caches and interpreter
        rounds: dict[str, list[float]] = {side: [] for side in SIDES}
        for index in range(args.rounds):
            for side in SIDES if index % 2 == 0 else SIDES[::-1]:
                rounds[side].append(round_us(calls[side], args.calls))
    return rounds


def over_http(args: argparse.Namespace, tmp: str) -> dict[str, list[float]]:
    wrk = "wrk"
    with ExitStack() as stack:
        servers = {}
        for side in SIDES:
            kp, key = keyplane(tmp, side)
            server = stack.enter_context(ThreadServer(kp))
            env = {
                **os.environ,
                "KEYPLANE_BENCH_VERIFIER_KEY": key,
                "KEYPLANE_BENCH_TARGET_KEY": key,
                "KEYPLANE_BENCH_SCOPE": SCOPE,
            }
            servers[side] = (server, env)
        rounds: dict[str, list[float]] = {side: [] for side in SIDES}
        for index in range(args.rounds + 1):  # round 0 warms both up and is not kept
            for side in SIDES if index % 2 == 0 else SIDES[::-1]:
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
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=100_000, help="calls per round and side")
    parser.add_argument("--rounds", type=int, default=7, help="rounds per side")
    parser.add_argument("--http", action="store_true", help="over HTTP with wrk")
    parser.add_argument("--duration", type=int, default=5, help="wrk seconds per round")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    args = parser.parse_args(argv)
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: its own registry

    with tempfile.TemporaryDirectory(prefix="keyplane-bench-metrics-") as tmp:
        rounds = over_http(args, tmp) if args.http else in_process(args, tmp)

    best = {side: min(values) for side, values in rounds.items()}
    per_second = {side: 1e6 / us for side, us in best.items()}
    ratio = per_second["on"] / per_second["off"]
    how = (
        f"HTTP, wrk -c{args.connections}, {args.duration} s per round"
        if args.http
        else f"in-process, {args.calls:,} calls per round"
    )
    print(f"metrics benchmark: {args.rounds} rounds per side, {how}")
    for side in SIDES:
        print(
            f"  {side:3}  {per_second[side]:>10,.0f} calls/s  best {best[side]:.2f} µs/call"
            f"  median {statistics.median(rounds[side]):.2f} µs/call"
        )
    verdict = "yes" if ratio >= TARGET else "NO"
    print(f"  on / off throughput: {ratio:.1%} (target >= {TARGET:.0%}: {verdict})")
    RESULTS_DIR.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS_DIR / f"metrics-{'http' if args.http else 'local'}-{stamp}.json"
    figures = {"rounds_us": rounds, "calls_per_second": per_second, "ratio": ratio}
    out.write_text(json.dumps({"args": vars(args), **figures}, indent=2))
    print(f"  saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
