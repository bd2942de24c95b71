"""Benchmark of key verification: over HTTP against the stack's ceiling, and in-process.

Run: ``.venv/bin/python bench/verify.py [--duration 10] [--connections 32]``

One run starts ``keyplane serve`` (one worker) on a throw-away SQLite database, creates a
verifier key and a target key, and measures with wrk:

* ``GET /healthz``: a route that does nothing, so its throughput is the ceiling of this
  stack (uvicorn + FastAPI + the guards) on this machine;
* ``POST /v1/keys/verify``: the hot path, with a warm cache;

then stops the server and times ``Verifier.verify`` in-process on a warm cache. It prints
a table against the targets and writes the same figures as JSON to bench/results/.

It is a benchmark, not a test: missed targets are reported, never turned into a failure.
Exit status: 0 measured, 1 the setup failed, 2 wrk is not installed.

Keys are secrets: none is printed or saved. wrk gets them through its environment, and
any text that might quote one (a server log, a traceback) is masked before printing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from keyplane.app import build
from keyplane.logs import redact
from keyplane.settings import Settings

BENCH_DIR = Path(__file__).resolve().parent
LUA_SCRIPT = BENCH_DIR / "verify.lua"
RESULTS_DIR = BENCH_DIR / "results"

SCOPE = "api_keys:read"  # what the target key holds and what every verification asks
# The targets of the issue.
MIN_RATIO = 0.60  # HTTP verify throughput / /healthz throughput
MAX_P99_MS = 5.0  # HTTP verify p99
MAX_IN_PROCESS_US = 10.0  # in-process warm verification, mean per call
MIN_LIMITED_RATIO = 0.90  # --ratelimit: verify throughput with one in-process limit / without
# Other processes using more than this share of a core during a run make its figures suspect.
BUSY_WARNING = 0.15

STARTUP_TIMEOUT = 30.0  # s for `keyplane serve` to answer /healthz (it migrates first)
CLI_TIMEOUT = 60.0  # s for `keyplane orgs create`
WRK_GRACE = 30.0  # s wrk may run past --duration before it is killed
STOP_TIMEOUT = 10.0  # s between SIGTERM and SIGKILL for the server
HTTP_TIMEOUT = 10.0  # s per setup request

_TIME_UNITS_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

Row = tuple[str, str, str, str]  # figure, value, target, met?


class BenchError(Exception):
    """The benchmark could not be set up or run; the message never contains a key."""


def mask(text: str) -> str:
    """``text`` with every keyplane key cut to its environment and last four characters."""
    return redact(text)  # the server's own log filter: one definition of a key's shape


# ---- CPU accounting ----------------------------------------------------------------------
# wrk, the server and anything else on the machine share its CPUs. Who used how much
# during a run says whether the server was saturated (near 100% of its one core) and
# whether something else (a test suite, a build) disturbed the figures.


@dataclass(frozen=True)
class CpuSnapshot:
    at: float  # monotonic seconds
    machine_busy: float | None  # CPU-seconds all processes used since boot (Linux only)
    server: float | None  # CPU-seconds the server used
    children: float  # CPU-seconds of this process's finished children (wrk)


@dataclass(frozen=True)
class CpuShare:
    """CPU used during one run, in cores (1.0 = one core busy all the time)."""

    server: float | None
    wrk: float
    other: float | None


def _machine_busy() -> float | None:
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    except OSError:
        return None
    # user + nice + system: the columns /proc/<pid>/stat also counts. Interrupt time (the
    # loopback traffic of the run itself lands there) is charged to no process: leave it out.
    user, nice, system = (int(f) for f in fields[:3])
    return (user + nice + system) / _TICKS


def _process_cpu(pid: int) -> float | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rpartition(")")[2].split()  # the name in parentheses may hold spaces
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime + stime


def cpu_snapshot(server_pid: int) -> CpuSnapshot:
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return CpuSnapshot(
        at=time.monotonic(),
        machine_busy=_machine_busy(),
        server=_process_cpu(server_pid),
        children=children.ru_utime + children.ru_stime,
    )


def cpu_share(before: CpuSnapshot, after: CpuSnapshot) -> CpuShare:
    wall = after.at - before.at
    server = None
    if before.server is not None and after.server is not None:
        server = (after.server - before.server) / wall
    wrk = (after.children - before.children) / wall
    other = None
    if before.machine_busy is not None and after.machine_busy is not None and server is not None:
        # Never below zero: the counters tick at 100 Hz, so small differences are noise.
        other = max(0.0, (after.machine_busy - before.machine_busy) / wall - server - wrk)
    return CpuShare(server=server, wrk=wrk, other=other)


# ---- wrk ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    requests_per_sec: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_2xx_3xx: int
    socket_errors: int


@dataclass(frozen=True)
class HttpResult:
    wrk: WrkResult
    cpu: CpuShare


def run_wrk(
    wrk: str,
    url: str,
    *,
    duration: int,
    connections: int,
    threads: int,
    script: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: int | None = None,
) -> WrkResult:
    """wrk's figures for ``url``. wrk leaves answers slower than ``timeout`` seconds (its
    default: 2) out of its latency figures and counts them as socket errors instead."""
    command = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency"]
    if timeout is not None:
        command += ["--timeout", f"{timeout}s"]
    if script is not None:
        command += ["-s", str(script)]
    command.append(url)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=duration + WRK_GRACE,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"wrk did not finish within {duration + WRK_GRACE:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {mask(done.stderr.strip())}")
    return parse_wrk(done.stdout)


def parse_wrk(output: str) -> WrkResult:
    """The figures of wrk's ``--latency`` report (its text format; wrk has no JSON one)."""
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    requests = re.search(r"^\s*(\d+) requests in ", output, re.MULTILINE)
    percentiles = {
        int(m[1]): float(m[2]) * _TIME_UNITS_MS[m[3]]
        for m in re.finditer(r"^\s+(\d+)%\s+([\d.]+)(us|ms|s|m|h)\s*$", output, re.MULTILINE)
    }
    if rps is None or requests is None or 50 not in percentiles or 99 not in percentiles:
        raise BenchError(f"could not parse wrk's output:\n{mask(output)}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return WrkResult(
        requests_per_sec=float(rps[1]),
        p50_ms=percentiles[50],
        p99_ms=percentiles[99],
        requests=int(requests[1]),
        non_2xx_3xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


# ---- the server --------------------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


def keyplane_cli() -> str:
    # The CLI installed beside this interpreter, so a venv's python finds the venv's keyplane.
    beside = Path(sys.executable).with_name("keyplane")
    if beside.exists():
        return str(beside)
    found = shutil.which("keyplane")
    if found is None:
        raise BenchError("the keyplane CLI is not installed (pip install -e .)")
    return found


def free_port() -> int:
    # Bound then released: a small race with other processes, acceptable on a bench machine.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def create_org(cli: str, database_url: str) -> tuple[str, str]:
    """A new organization's id and its full-access key, via ``keyplane orgs create --json``."""
    command = [cli, "orgs", "create", "Bench", "--owner-email", "bench@example.com"]
    command += ["--database-url", database_url, "--json"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=CLI_TIMEOUT, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"`keyplane orgs create` took longer than {CLI_TIMEOUT:.0f} s") from exc
    if done.returncode != 0:
        raise BenchError(f"`keyplane orgs create` failed: {mask(done.stderr.strip())}")
    try:
        created = json.loads(done.stdout)
        return created["org_id"], created["api_key"]
    except (ValueError, KeyError) as exc:
        # Its stdout holds a key: say what went wrong without quoting it.
        raise BenchError("`keyplane orgs create --json` printed no org_id/api_key") from exc


def tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return mask("\n".join(text.splitlines()[-lines:]))


@contextmanager
def running_server(
    cli: str, port: int, database_url: str, log: Path, env: dict[str, str] | None = None
) -> Iterator[Server]:
    """``keyplane serve`` on 127.0.0.1:port, answering /healthz; always stopped on exit.
    ``env``: more environment (KEYPLANE_REDIS_URL for --limits)."""
    command = [cli, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--database-url", database_url]
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        wait_healthy(process, base, log)
        yield Server(base, process.pid)
    finally:
        stop(process)


def wait_healthy(
    process: subprocess.Popen[bytes], base: str, log: Path, timeout: float = STARTUP_TIMEOUT
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchError(f"the server exited with {process.returncode}:\n{tail(log)}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass  # not listening yet
        time.sleep(0.1)
    raise BenchError(f"the server did not answer /healthz within {timeout:.0f} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=STOP_TIMEOUT)


# ---- keys over the API -------------------------------------------------------------------


def create_key(
    client: httpx.Client,
    admin_key: str,
    name: str,
    scopes: Sequence[str],
    limits: dict[str, Any] | None = None,
) -> str:
    response = client.post(
        "/v1/keys",
        headers={"Authorization": f"Bearer {admin_key}"},
        json={"name": name, "scopes": list(scopes), **(limits or {})},
    )
    if response.status_code != 201:
        raise BenchError(f"POST /v1/keys answered {response.status_code}: {mask(response.text)}")
    key: str = response.json()["key"]
    return key


def check_valid(client: httpx.Client, verifier_key: str, target_key: str) -> None:
    """One verification by hand: wrk counts non-2xx answers but never reads a body."""
    response = client.post(
        "/v1/keys/verify",
        headers={"Authorization": f"Bearer {verifier_key}"},
        json={"key": target_key, "scopes": [SCOPE]},
    )
    body = response.json() if response.status_code == 200 else {}
    if not (body.get("valid") is True and body.get("code") == "VALID"):
        raise BenchError(
            f"/v1/keys/verify answered {response.status_code} {mask(response.text)}; "
            "expected 200 with a VALID verdict"
        )


# ---- in-process --------------------------------------------------------------------------


@dataclass(frozen=True)
class InProcessResult:
    calls: int
    batch: int
    mean_us: float
    p50_us: float
    p99_us: float


def measure_in_process(
    database_url: str, org_id: str, key: str, calls: int, batch: int
) -> InProcessResult:
    """``Verifier.verify`` on a warm cache, timed per batch.

    One call takes a few µs, not far above perf_counter_ns's own cost, so each sample is a
    batch's mean per call; p50/p99 are over those batch means (they hide single-call
    outliers but show GC pauses and noise from other processes).
    """
    kp = build(Settings(database_url=database_url))
    try:
        verify = kp.verifier.verify
        scopes = [SCOPE]
        verdict = verify(org_id, key, scopes)  # the first call loads the cache
        if not verdict.valid:
            raise BenchError(f"in-process verification answered {verdict.code}, not VALID")
        for _ in range(min(calls, 10_000)):  # warm the interpreter's caches too
            verify(org_id, key, scopes)
        samples: list[float] = []
        clock = time.perf_counter_ns
        for _ in range(max(1, calls // batch)):
            start = clock()
            for _ in range(batch):
                verify(org_id, key, scopes)
            samples.append((clock() - start) / batch / 1000)
    finally:
        kp.close()
    quantiles = statistics.quantiles(samples, n=100) if len(samples) > 1 else samples * 99
    return InProcessResult(
        calls=len(samples) * batch,
        batch=batch,
        mean_us=statistics.fmean(samples),
        p50_us=quantiles[49],
        p99_us=quantiles[98],
    )


def combine(*runs: HttpResult) -> HttpResult:
    """Runs of equal duration as one: mean throughput and p50, the worst p99."""

    def mean(values: Sequence[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return None if len(known) < len(values) else statistics.fmean(known)

    wrks = [run.wrk for run in runs]
    wrk = WrkResult(
        requests_per_sec=statistics.fmean(w.requests_per_sec for w in wrks),
        p50_ms=statistics.fmean(w.p50_ms for w in wrks),
        p99_ms=max(w.p99_ms for w in wrks),
        requests=sum(w.requests for w in wrks),
        non_2xx_3xx=sum(w.non_2xx_3xx for w in wrks),
        socket_errors=sum(w.socket_errors for w in wrks),
    )
    cpu = CpuShare(
        server=mean([run.cpu.server for run in runs]),
        wrk=statistics.fmean(run.cpu.wrk for run in runs),
        other=mean([run.cpu.other for run in runs]),
    )
    return HttpResult(wrk, cpu)


# ---- the run -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Results:
    healthz: HttpResult
    verify: HttpResult
    in_process: InProcessResult
    limited: HttpResult | None = None  # --ratelimit: the same verification of a limited key
    # --ratelimit: limited / unlimited throughput of each round (unlimited, limited, limited,
    # unlimited), whose median is the figure a noisy machine moves least.
    round_ratios: tuple[float, ...] = ()


class Load:
    """wrk against one server, with the CPU each run used."""

    def __init__(self, wrk: str, server: Server, args: argparse.Namespace) -> None:
        self.wrk = wrk
        self.server = server
        self.args = args

    def run(
        self,
        path: str,
        duration: int,
        script: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> HttpResult:
        before = cpu_snapshot(self.server.pid)
        result = run_wrk(
            self.wrk,
            self.server.base + path,
            duration=duration,
            connections=self.args.connections,
            threads=self.args.threads,
            script=script,
            env=env,
        )
        return HttpResult(result, cpu_share(before, cpu_snapshot(self.server.pid)))


def measure(args: argparse.Namespace, wrk: str, workdir: Path) -> Results:
    """The whole run in ``workdir``, which holds the database, its secret and the server log."""
    cli = keyplane_cli()
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    org_id, admin_key = create_org(cli, database_url)
    with running_server(cli, free_port(), database_url, workdir / "server.log") as server:
        print(f"server pid {server.pid} at {server.base}", flush=True)  # for py-spy --pid
        with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
            verifier_key = create_key(client, admin_key, "bench-verifier", ["keys:verify"])
            target_key = create_key(client, admin_key, "bench-target", [SCOPE])
            check_valid(client, verifier_key, target_key)  # also loads both into the cache
            limited_key = None
            if args.ratelimit:
                limited_key = create_key(client, admin_key, "bench-limited", [SCOPE], LIMIT)
                check_valid(client, verifier_key, limited_key)
        # wrk reads the keys from its environment (see verify.lua), not its command line.
        wrk_env = {
            **os.environ,
            "KEYPLANE_BENCH_VERIFIER_KEY": verifier_key,
            "KEYPLANE_BENCH_TARGET_KEY": target_key,
            "KEYPLANE_BENCH_SCOPE": SCOPE,
        }
        load = Load(wrk, server, args)
        if args.warmup > 0:
            print(f"warming up ({args.warmup} s per endpoint) ...", flush=True)
            load.run("/healthz", args.warmup)
            load.run("/v1/keys/verify", args.warmup, LUA_SCRIPT, wrk_env)
        print(f"measuring GET /healthz for {args.duration} s ...", flush=True)
        healthz = load.run("/healthz", args.duration)
        limited = None
        ratios: tuple[float, ...] = ()
        if limited_key is None:
            print(f"measuring POST /v1/keys/verify for {args.duration} s ...", flush=True)
            verify = load.run("/v1/keys/verify", args.duration, LUA_SCRIPT, wrk_env)
        else:
            # Same server, same moment: only the target key differs (one rate limit, never
            # reached, so every verification is admitted and spends). Each round runs
            # unlimited, limited, limited, unlimited (half the duration each), so a drift of
            # the machine's load within a round falls on both sides alike; the median of
            # the rounds' ratios is not moved by one round that a neighbour disturbed.
            limited_env = {**wrk_env, "KEYPLANE_BENCH_TARGET_KEY": limited_key}
            if args.warmup > 0:
                load.run("/v1/keys/verify", args.warmup, LUA_SCRIPT, limited_env)
            verify, limited, ratios = limited_rounds(load, args, wrk_env, limited_env)
        with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
            check_valid(client, verifier_key, target_key)  # the verdict held throughout
            if limited_key is not None:
                check_valid(client, verifier_key, limited_key)
    # The server is stopped here: the in-process timing gets the CPU to itself.
    print(f"measuring in-process verification ({args.calls} calls) ...", flush=True)
    in_process = measure_in_process(database_url, org_id, target_key, args.calls, args.batch)
    return Results(healthz, verify, in_process, limited, ratios)


def limited_rounds(
    load: Load, args: argparse.Namespace, plain_env: dict[str, str], limited_env: dict[str, str]
) -> tuple[HttpResult, HttpResult, tuple[float, ...]]:
    """``--rounds`` of unlimited, limited, limited, unlimited: both keys' pooled results and
    each round's limited / unlimited throughput."""
    half = max(1, args.duration // 2)
    print(
        f"measuring POST /v1/keys/verify, unlimited and limited key, {args.rounds} "
        f"round(s) of {4 * half} s ...",
        flush=True,
    )
    plain_runs: list[HttpResult] = []
    limited_runs: list[HttpResult] = []
    ratios: list[float] = []
    for _ in range(args.rounds):
        plain = [load.run("/v1/keys/verify", half, LUA_SCRIPT, plain_env)]
        spent = [load.run("/v1/keys/verify", half, LUA_SCRIPT, limited_env)]
        spent.append(load.run("/v1/keys/verify", half, LUA_SCRIPT, limited_env))
        plain.append(load.run("/v1/keys/verify", half, LUA_SCRIPT, plain_env))
        base = combine(*plain).wrk.requests_per_sec
        ratios.append(combine(*spent).wrk.requests_per_sec / base if base else 0.0)
        plain_runs += plain
        limited_runs += spent
    return combine(*plain_runs), combine(*limited_runs), tuple(ratios)


# ---- --limits: no limit, an in-process limit, a Redis limit -------------------------------


@dataclass(frozen=True)
class LimitsResults:
    unlimited: HttpResult
    in_process: HttpResult
    redis: HttpResult


def _wrk_env(verifier_key: str, target_key: str) -> dict[str, str]:
    # wrk reads the keys from its environment (see verify.lua), not its command line.
    return {
        **os.environ,
        "KEYPLANE_BENCH_VERIFIER_KEY": verifier_key,
        "KEYPLANE_BENCH_TARGET_KEY": target_key,
        "KEYPLANE_BENCH_SCOPE": SCOPE,
    }


def _verify_load(
    load: Load, args: argparse.Namespace, env: dict[str, str], what: str
) -> HttpResult:
    if args.warmup > 0:
        load.run("/v1/keys/verify", args.warmup, LUA_SCRIPT, env)
    print(f"measuring POST /v1/keys/verify, {what}, for {args.duration} s ...", flush=True)
    return load.run("/v1/keys/verify", args.duration, LUA_SCRIPT, env)


def measure_limits(args: argparse.Namespace, wrk: str, workdir: Path) -> LimitsResults:
    """One database, two servers in turn: limits in process (a target key without limits,
    one with a never-reached limit), then limits in Redis (KEYPLANE_REDIS_URL, a prefix of
    this run's own) for the limited key. Every limited check is spent."""
    cli = keyplane_cli()
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    org_id, admin_key = create_org(cli, database_url)
    limit = {"ratelimits": [{"name": "bench", "limit": 1_000_000_000, "period_seconds": 1}]}
    with running_server(cli, free_port(), database_url, workdir / "server.log") as server:
        with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
            verifier_key = create_key(client, admin_key, "bench-verifier", ["keys:verify"])
            plain_key = create_key(client, admin_key, "bench-plain", [SCOPE])
            limited_key = create_key(client, admin_key, "bench-limited", [SCOPE], limit)
            check_valid(client, verifier_key, plain_key)
            check_valid(client, verifier_key, limited_key)
        load = Load(wrk, server, args)
        unlimited = _verify_load(load, args, _wrk_env(verifier_key, plain_key), "no limit")
        in_process = _verify_load(
            load, args, _wrk_env(verifier_key, limited_key), "in-process limit"
        )
    prefix = f"keyplane-bench-{os.getpid()}:"
    env = {"KEYPLANE_REDIS_URL": args.redis_url, "KEYPLANE_REDIS_PREFIX": prefix}
    try:
        with running_server(
            cli, free_port(), database_url, workdir / "server-redis.log", env
        ) as server:
            with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
                check_valid(client, verifier_key, limited_key)
            load = Load(wrk, server, args)
            remote = _verify_load(load, args, _wrk_env(verifier_key, limited_key), "Redis limit")
            with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
                check_valid(client, verifier_key, limited_key)
    finally:
        _drop_prefix(args.redis_url, prefix)
    del org_id
    return LimitsResults(unlimited, in_process, remote)


def _drop_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


MAX_INPROCESS_COST = 0.10  # in-process limiter: at most 10% of throughput
MIN_REDIS_SHARE = 0.70  # Redis-backed: at least 70% of in-process


def limits_rows(results: LimitsResults) -> list[Row]:
    none, local, remote = (
        results.unlimited.wrk,
        results.in_process.wrk,
        results.redis.wrk,
    )
    cost = 1 - local.requests_per_sec / none.requests_per_sec if none.requests_per_sec else 1.0
    share = remote.requests_per_sec / local.requests_per_sec if local.requests_per_sec else 0.0
    errors = sum(r.non_2xx_3xx + r.socket_errors for r in (none, local, remote))
    return [
        ("verify, no limit", f"{none.requests_per_sec:,.0f} req/s", "", ""),
        ("verify, in-process limit", f"{local.requests_per_sec:,.0f} req/s", "", ""),
        ("verify, Redis limit", f"{remote.requests_per_sec:,.0f} req/s", "", ""),
        (
            "in-process limiter cost",
            f"{cost:.1%}",
            f"<= {MAX_INPROCESS_COST:.0%}",
            _met(cost <= MAX_INPROCESS_COST),
        ),
        (
            "Redis / in-process throughput",
            f"{share:.1%}",
            f">= {MIN_REDIS_SHARE:.0%}",
            _met(share >= MIN_REDIS_SHARE),
        ),
        (
            "latency p50 none / in-process / Redis",
            f"{none.p50_ms:.2f} / {local.p50_ms:.2f} / {remote.p50_ms:.2f} ms",
            "",
            "",
        ),
        (
            "latency p99 none / in-process / Redis",
            f"{none.p99_ms:.2f} / {local.p99_ms:.2f} / {remote.p99_ms:.2f} ms",
            "",
            "",
        ),
        (
            "server CPU per verification none / in-process / Redis",
            " / ".join(
                _cpu_per_request(r) for r in (results.unlimited, results.in_process, results.redis)
            ),
            "",
            "",
        ),
        ("non-2xx answers + socket errors", str(errors), "0", _met(errors == 0)),
    ]


def _cpu_per_request(http: HttpResult) -> str:
    """The server's CPU time per answered request: steadier than throughput on a machine
    other processes share, as it does not count the time spent waiting for a core."""
    if http.cpu.server is None or not http.wrk.requests_per_sec:
        return "n/a"
    return f"{http.cpu.server * 1e6 / http.wrk.requests_per_sec:.0f} µs"


def limits_notes(results: LimitsResults, env: dict[str, Any]) -> list[str]:
    lines = [
        f"machine: {env['cpus']} CPUs ({env['machine']}), Python {env['python']}. wrk, the "
        "server, Redis and everything else running share them.",
        "CPU used during each run (100% = one core busy throughout):",
    ]
    for name, http in (
        ("no limit", results.unlimited),
        ("in-process limit", results.in_process),
        ("Redis limit", results.redis),
    ):
        cpu = http.cpu
        lines.append(
            f"  {name:<18} server {_cores(cpu.server):>5}   wrk {_cores(cpu.wrk):>5}"
            f"   other processes (Redis among them) {_cores(cpu.other):>5}"
        )
    return lines


# ---- the report --------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "yes" if ok else "NO"


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def rows(results: Results) -> list[Row]:
    healthz, verify, local = results.healthz.wrk, results.verify.wrk, results.in_process
    ratio = verify.requests_per_sec / healthz.requests_per_sec if healthz.requests_per_sec else 0.0
    clean = verify.non_2xx_3xx == 0 and verify.socket_errors == 0
    table: list[Row] = [
        ("GET /healthz throughput", f"{healthz.requests_per_sec:,.0f} req/s", "(ceiling)", ""),
        ("GET /healthz latency p50", f"{healthz.p50_ms:.2f} ms", "", ""),
        ("GET /healthz latency p99", f"{healthz.p99_ms:.2f} ms", "", ""),
        ("POST /v1/keys/verify throughput", f"{verify.requests_per_sec:,.0f} req/s", "", ""),
        (
            "verify / healthz throughput",
            f"{ratio:.1%}",  # one decimal: 59.7% must not print as a "60%" that is missed
            f">= {MIN_RATIO:.0%}",
            _met(ratio >= MIN_RATIO),
        ),
        ("POST /v1/keys/verify latency p50", f"{verify.p50_ms:.2f} ms", "", ""),
        (
            "POST /v1/keys/verify latency p99",
            f"{verify.p99_ms:.2f} ms",
            f"< {MAX_P99_MS:g} ms",
            _met(verify.p99_ms < MAX_P99_MS),
        ),
        (
            "verify non-2xx answers / socket errors",
            f"{verify.non_2xx_3xx} / {verify.socket_errors}",
            "0 / 0",
            _met(clean),
        ),
        (
            "in-process warm verify, mean per call",
            f"{local.mean_us:.2f} µs",
            f"< {MAX_IN_PROCESS_US:g} µs",
            _met(local.mean_us < MAX_IN_PROCESS_US),
        ),
        ("in-process warm verify, p50 of batches", f"{local.p50_us:.2f} µs", "", ""),
        ("in-process warm verify, p99 of batches", f"{local.p99_us:.2f} µs", "", ""),
    ]
    if results.limited is not None:
        limited = results.limited.wrk
        share = limited.requests_per_sec / verify.requests_per_sec if verify.requests_per_sec else 0
        ratios = results.round_ratios or (share,)
        median = statistics.median(ratios)
        table += [
            (
                "verify, rate-limited key, throughput",
                f"{limited.requests_per_sec:,.0f} req/s",
                "",
                "",
            ),
            ("verify, limited / unlimited throughput, all rounds", f"{share:.1%}", "", ""),
            (
                f"  median of {len(ratios)} round(s) (lowest-highest)",
                f"{median:.1%} ({min(ratios):.1%}-{max(ratios):.1%})",
                f">= {MIN_LIMITED_RATIO:.0%}",
                _met(median >= MIN_LIMITED_RATIO),
            ),
            ("verify, rate-limited key, latency p99", f"{limited.p99_ms:.2f} ms", "", ""),
            # Throughput moves with the CPU the server got; its CPU per answer does not, so
            # on a shared machine this is the steadier comparison.
            (
                "server CPU per verify, unlimited",
                _per_request(results.verify),
                "",
                "",
            ),
            ("server CPU per verify, limited", _per_request(results.limited), "", ""),
            ("  unlimited / limited (CPU per verify)", _cost_ratio(results), ">= 90%", ""),
            (
                "limited non-2xx answers / socket errors",
                f"{limited.non_2xx_3xx} / {limited.socket_errors}",
                "0 / 0",
                _met(limited.non_2xx_3xx == 0 and limited.socket_errors == 0),
            ),
        ]
    return table


def _cpu_us(http: HttpResult) -> float | None:
    if http.cpu.server is None or not http.wrk.requests_per_sec:
        return None
    return http.cpu.server / http.wrk.requests_per_sec * 1e6


def _per_request(http: HttpResult) -> str:
    value = _cpu_us(http)
    return "n/a" if value is None else f"{value:.1f} µs"


def _cost_ratio(results: Results) -> str:
    plain = _cpu_us(results.verify)
    limited = _cpu_us(results.limited) if results.limited is not None else None
    return "n/a" if plain is None or not limited else f"{plain / limited:.1%}"


def notes(results: Results, env: dict[str, Any]) -> list[str]:
    """What the table needs to be read right: who used the CPUs, and what latency can be."""
    lines = [
        f"machine: {env['cpus']} CPUs ({env['machine']}), Python {env['python']}. wrk, the "
        "server and everything else running share them.",
        "CPU used during each run (100% = one core busy throughout):",
    ]
    runs = [("GET /healthz", results.healthz), ("POST /v1/keys/verify", results.verify)]
    if results.limited is not None:
        runs.append(("verify, limited key", results.limited))
    for name, http in runs:
        cpu = http.cpu
        lines.append(
            f"  {name:<22} server {_cores(cpu.server):>5}   wrk {_cores(cpu.wrk):>5}"
            f"   other processes {_cores(cpu.other):>5}"
        )
    busy = [h.cpu.other for _, h in runs if h.cpu.other is not None]
    if busy and max(busy) > BUSY_WARNING:
        lines.append(
            f"WARNING: other processes used up to {max(busy):.0%} of a core during the runs; "
            "these figures are disturbed. Run again on a quiet machine."
        )
    verify = results.verify.wrk
    if verify.requests_per_sec:
        # wrk is a closed loop: each connection waits for its answer before sending again.
        mean_ms = env["connections"] / verify.requests_per_sec * 1000
        lines.append(
            f"closed loop: {env['connections']} connections at {verify.requests_per_sec:,.0f} "
            f"req/s means a mean latency of {mean_ms:.2f} ms (connections / throughput); "
            "a lower p99 needs more throughput or fewer connections."
        )
    return lines


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "connections": args.connections,
        "wrk_threads": args.threads,
        "server_workers": 1,
        "in_process_calls": args.calls,
        "in_process_batch": args.batch,
    }


def print_report(table: list[Row], lines: list[str], env: dict[str, Any]) -> None:
    print_table(
        f"keyplane verification benchmark: {env['connections']} connections, "
        f"wrk -t{env['wrk_threads']}, 1 server worker, {env['duration_s']} s per endpoint",
        table,
        lines,
    )


def print_table(title: str, table: list[Row], lines: list[str]) -> None:
    """``table`` under ``title``, in aligned columns, then the notes in ``lines``."""
    headers = ("figure", "value", "target", "met?")
    widths = [max(len(row[i]) for row in [headers, *table]) for i in range(4)]
    rule = "  ".join("-" * w for w in widths)
    print()
    print(title)
    print(rule)
    for row in [headers, *table]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if row is headers:
            print(rule)
    print(rule)
    for line in lines:
        print(line)


def save(
    results: Any,
    table: Sequence[Sequence[str]],
    lines: list[str],
    env: dict[str, Any],
    benchmark: str = "verify",
) -> Path:
    """Writes a run's figures to bench/results/<benchmark>-<time>.json (``results``: the
    benchmark's dataclass of measurements)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    path = RESULTS_DIR / f"{benchmark}-{now:%Y%m%dT%H%M%SZ}.json"
    document = {
        "benchmark": benchmark,
        "at": now.isoformat(),
        "environment": env,
        "results": asdict(results),
        "report": [dict(zip(("figure", "value", "target", "met"), r, strict=True)) for r in table],
        "notes": lines,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


# ---- main --------------------------------------------------------------------------------


# ``--ratelimit``: a second target key with a rate limit it never reaches (the in-process
# limiter's cost on the hot path, every check spent), measured right after the first.
LIMIT = {"ratelimits": [{"name": "bench", "limit": 1_000_000_000, "period_seconds": 1}]}


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per endpoint (10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk seconds per endpoint first (2)")
    parser.add_argument("--calls", type=int, default=200_000, help="in-process calls (200000)")
    parser.add_argument(
        "--ratelimit",
        action="store_true",
        help="also verify a key with one (never reached) rate limit, same server and run",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="--ratelimit: rounds of unlimited, limited, limited, unlimited (5)",
    )
    parser.add_argument("--batch", type=int, default=100, help="calls per timed batch (100)")
    parser.add_argument(
        "--limits",
        action="store_true",
        help="instead: verify throughput with no limit, an in-process limit and a Redis limit",
    )
    parser.add_argument(
        "--redis-url",
        default="redis://127.0.0.1:6379/0",
        help="the Redis of --limits (keys under a prefix of the run's own, deleted after)",
    )
    args = parser.parse_args(argv)
    if min(args.duration, args.connections, args.threads, args.calls, args.batch, args.rounds) < 1:
        parser.error(
            "--duration, --connections, --threads, --calls, --batch and --rounds must be >= 1"
        )
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    if args.connections < args.threads:
        parser.error("wrk needs at least one connection per thread")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "wrk is not installed; it drives the HTTP part of this benchmark.\n"
            "Install it with:  apt-get install -y wrk   (macOS: brew install wrk)",
            file=sys.stderr,
        )
        return 2
    # SIGTERM (a CI timeout, `kill`) unwinds like Ctrl-C, so the finally blocks stop the
    # server and delete the temporary directory instead of leaving them behind.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    if args.limits:
        return _main_limits(args, wrk)
    try:
        with tempfile.TemporaryDirectory(prefix="keyplane-bench-") as tmp:
            results = measure(args, wrk, Path(tmp))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        # A traceback can quote a request or a response: mask it like any other output.
        print(mask(traceback.format_exc()), file=sys.stderr)
        return 1
    env = environment(args)
    table = rows(results)
    lines = notes(results, env)
    print_report(table, lines, env)
    print(f"results: {os.path.relpath(save(results, table, lines, env))}")
    return 0


def _main_limits(args: argparse.Namespace, wrk: str) -> int:
    try:
        with tempfile.TemporaryDirectory(prefix="keyplane-bench-") as tmp:
            results = measure_limits(args, wrk, Path(tmp))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        print(mask(traceback.format_exc()), file=sys.stderr)
        return 1
    env = environment(args)
    table = limits_rows(results)
    lines = limits_notes(results, env)
    print_table(
        f"keyplane verification with limits: {env['connections']} connections, "
        f"wrk -t{env['wrk_threads']}, 1 server worker, {env['duration_s']} s per run",
        table,
        lines,
    )
    RESULTS_DIR.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    path = RESULTS_DIR / f"verify-limits-{now:%Y%m%dT%H%M%SZ}.json"
    document = {
        "benchmark": "verify-limits",
        "at": now.isoformat(),
        "environment": env,
        "results": asdict(results),
        "report": [dict(zip(("figure", "value", "target", "met"), r, strict=True)) for r in table],
        "notes": lines,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(f"results: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
