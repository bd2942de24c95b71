"""Instructions per verification over HTTP, without and with an in-process rate limit.

Run: ``.venv/bin/python bench/instructions.py [--seconds 20] [--rounds 2]``  (~4 min)

Throughput on a shared machine moves by more than the 10% this compares (bench/verify.py
--ratelimit: rounds of one run ranged 78-134%), so this counts work instead of timing it:
``keyplane serve`` runs under valgrind's callgrind, which counts the instructions the
server executes, the same for the same code whatever else the machine does. wrk loads it
(32 connections, the request of bench/verify.py) in rounds of: unlimited key, limited key.
Instruction counting is on only while wrk runs, and each phase is dumped and divided by
the requests wrk completed in it, after taking out what the server executes idle over the
same time (its flushers and timers, measured first). The figure, unlimited / limited
instructions per verification, is the throughput ratio a CPU-bound server would reach.

Needs valgrind (``callgrind_control``) and wrk. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from verify import (  # bench/verify.py, beside this script
    LIMIT,
    LUA_SCRIPT,
    SCOPE,
    BenchError,
    WrkResult,
    check_valid,
    create_key,
    create_org,
    free_port,
    keyplane_cli,
    run_wrk,
    stop,
    wait_healthy,
)

STARTUP_TIMEOUT = 300.0  # s: the server migrates and imports under valgrind, ~50x slower


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=20, help="wrk seconds per phase (20)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of both keys (2)")
    args = parser.parse_args()
    missing = [tool for tool in ("valgrind", "callgrind_control", "wrk") if not shutil.which(tool)]
    if missing:
        print(f"not installed: {', '.join(missing)}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="keyplane-instr-") as work:
        try:
            counts = measure(Path(work), args)
        except BenchError as exc:
            print(f"bench failed: {exc}", file=sys.stderr)
            return 1
    print(f"{'phase':10} {'requests':>9} {'instructions per verification':>31}")
    for label, requests, per in counts:
        print(f"{label:10} {requests:9,} {per:31,.0f}")
    plain = statistics.fmean(per for label, _, per in counts if label.startswith("unlimited"))
    limited = statistics.fmean(per for label, _, per in counts if label.startswith("limited"))
    print(f"unlimited / limited (instructions per verification): {plain / limited:.1%}")
    print("target: an in-process limiter costs at most 10% of throughput (>= 90%)")
    return 0


def measure(work: Path, args: argparse.Namespace) -> list[tuple[str, int, float]]:
    cli = keyplane_cli()
    database_url = f"sqlite:///{work / 'bench.db'}"
    _, admin_key = create_org(cli, database_url)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    out = work / "callgrind.out"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",  # counting starts with the first phase, not at import
        f"--callgrind-out-file={out}",
        sys.executable,
        cli,
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database-url",
        database_url,
    ]
    log = work / "server.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT)
    try:
        wait_healthy(server, base, log, timeout=STARTUP_TIMEOUT)
        with httpx.Client(base_url=base, timeout=60.0) as client:
            verifier = create_key(client, admin_key, "bench-verifier", ["keys:verify"])
            plain = create_key(client, admin_key, "bench-target", [SCOPE])
            limited = create_key(client, admin_key, "bench-limited", [SCOPE], LIMIT)
            check_valid(client, verifier, plain)
            check_valid(client, verifier, limited)
        counts = []
        # What the server executes with no request at all (its flushers and timers), per
        # second: taken out of each phase before dividing by the phase's requests, so a
        # phase that served fewer requests is not charged more of it per request.
        _control(server.pid, "--zero")
        _control(server.pid, "--instr=on")
        time.sleep(args.seconds)
        _control(server.pid, "--instr=off")
        _control(server.pid, "--dump=idle")
        idle_per_second = _total(out, server.pid) / args.seconds
        print(f"idle: {idle_per_second:,.0f} instructions per second", flush=True)
        for round_ in range(1, args.rounds + 1):
            for label, target in (("unlimited", plain), ("limited", limited)):
                env = {
                    **os.environ,
                    "KEYPLANE_BENCH_VERIFIER_KEY": verifier,
                    "KEYPLANE_BENCH_TARGET_KEY": target,
                    "KEYPLANE_BENCH_SCOPE": SCOPE,
                }
                name = f"{label}-{round_}"
                _load(f"{base}/v1/keys/verify", 3, env)  # warm
                _control(server.pid, "--zero")
                _control(server.pid, "--instr=on")
                result = _load(f"{base}/v1/keys/verify", args.seconds, env)
                _control(server.pid, "--instr=off")
                _control(server.pid, f"--dump={name}")
                if result.non_2xx_3xx or result.socket_errors:
                    raise BenchError(f"{name}: {result.non_2xx_3xx} non-2xx answers")
                busy = _total(out, server.pid) - idle_per_second * args.seconds
                counts.append((name, result.requests, busy / result.requests))
        return counts
    finally:
        stop(server)


def _load(url: str, seconds: int, env: dict[str, str]) -> WrkResult:
    # A generous timeout: the first answers after counting starts are slow (valgrind
    # translates the code again), and wrk would count them as socket errors.
    return run_wrk(
        "wrk",
        url,
        duration=seconds,
        connections=32,
        threads=1,
        script=LUA_SCRIPT,
        env=env,
        timeout=30,
    )


def _control(pid: int, option: str) -> None:
    subprocess.run(["callgrind_control", option, str(pid)], check=True, capture_output=True)


def _total(out: Path, pid: int) -> int:
    """The instructions of the newest dump (callgrind numbers them .1, .2, … per pid)."""
    dumps = sorted(
        out.parent.glob(f"{out.name}.*"), key=lambda path: int(path.name.rsplit(".", 1)[1])
    )
    if not dumps:
        raise BenchError(f"callgrind wrote no dump for pid {pid}")
    found = re.search(r"^totals:\s+(\d+)", dumps[-1].read_text(errors="replace"), re.MULTILINE)
    if found is None:
        raise BenchError(f"no totals in {dumps[-1].name}")
    return int(found.group(1))


if __name__ == "__main__":
    sys.exit(main())
