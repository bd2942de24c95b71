"""Benchmark: verification at 10³, 10⁵ and 10⁶ keys under Zipf traffic, on SQLite and
PostgreSQL, the cost of a cold verification; and one server worker against two.

Run: ``.venv/bin/python bench/scale.py [--sizes 1000,100000,1000000]
[--backends sqlite,postgresql] [--duration 10] [--warmup 5] [--parts keys,workers]``

**keys**: per backend, one database grows from the smallest size to the largest. Keys are
inserted in bulk through the storage layer's table (``api_keys``) with the digests the
server computes (``KeyHasher`` under the same secret), because creating 10⁶ keys through
the API would take hours; the setup time is reported. At each size a fresh ``keyplane
serve`` (one worker, empty cache):

1. **cold**: verifies ``--cold`` keys it has never seen, one request at a time (first
   sight: the database read), then the same keys again (warm). cold p50 - warm p50 is
   what the read costs over HTTP.
2. **zipf**: wrk with bench/zipf.lua for ``--warmup`` then ``--duration`` seconds: each
   request asks about the key of rank k with probability ∝ k^-s (s = ``--zipf-s``, 1.1).
   The report gives throughput against the smallest size (how flat it is) and the
   distinct keys asked about in the measured run.

3. **one key**: the same server under bench/verify.lua (rank 1 only), before the Zipf
   run: the server's speed at that moment without the spread.

A run of seconds cannot show a settled cache: at 10⁵ keys and more most keys a run asks
about are first sights. For a size above the cache (``KEYPLANE_CACHE_MAX_ENTRIES``,
default 100 000), where it evicts, the share of verifications that would miss it once
settled is simulated (``--draws``, the cache's oldest-first eviction), beside the floor
any eviction order has (the traffic share of keys ranked below the cache's size). A miss
costs what **cold** measures.

**workers** (PostgreSQL, which ``--workers 2`` needs): ``keyplane serve --workers 1``,
then ``--workers 2``, on one database, under the static load of bench/verify.lua (one
verifier, one target key, as bench/verify.py), with the CPU of the whole process tree.

A benchmark, not a test: nothing is asserted. Exit status 0 measured, 1 setup failed,
2 no wrk. Figures also go to bench/results/scale-<UTC time>.json. Keys are never printed:
wrk reads them from a file in a temporary directory that is deleted afterwards, and
PostgreSQL databases (``keyplane_bench_scale_<random>``) are dropped.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import random
import secrets
import shutil
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
import psycopg
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from keyplane.domain.ids import new_id
from keyplane.domain.tokens import BASE62, PREFIX, KeyHasher, checksum, mask_key
from keyplane.storage.engine import make_engine
from keyplane.storage.tables import api_keys
from verify import (  # bench/verify.py, beside this script
    LUA_SCRIPT,
    BenchError,
    CpuShare,
    WrkResult,
    create_org,
    free_port,
    keyplane_cli,
    mask,
    stop,
    tail,
)

BENCH_DIR = Path(__file__).resolve().parent
ZIPF_SCRIPT = BENCH_DIR / "zipf.lua"
RESULTS_DIR = BENCH_DIR / "results"
SCOPE = "api_keys:read"
CACHE_DEFAULT = 100_000  # settings.py cache_max_entries
BATCH = 20_000  # rows per INSERT batch
STARTUP_TIMEOUT = 120.0
_TICKS = os.sysconf("SC_CLK_TCK")


# ---- keys in bulk ------------------------------------------------------------------------


def mint(rng: random.Random) -> str:
    """A live key of keyplane's format (domain/tokens.py mint_key) from ``rng``: seeded,
    so a run is repeatable, and ~5x faster than ``secrets.choice`` per character. Bench keys
    in a throw-away database only."""
    body = f"{PREFIX}live_{''.join(rng.choices(BASE62, k=32))}"
    return body + checksum(body)


def insert_keys(
    database_url: str, hasher: KeyHasher, org_id: str, keys: Sequence[str], scopes: list[str]
) -> None:
    """Rows as KeyService would write them for ``keys`` (active, no limits), in batches."""
    now = datetime.now(UTC)
    engine = make_engine(database_url)
    try:
        with engine.begin() as conn:
            for start in range(0, len(keys), BATCH):
                conn.execute(
                    insert(api_keys),
                    [
                        {
                            "id": new_id("key"),
                            "org_id": org_id,
                            "name": "bench-scale",
                            "description": "",
                            "digest": hasher.digest(key),
                            "digest_version": hasher.version,
                            "masked_key": mask_key(key),
                            "environment": "live",
                            "scopes": scopes,
                            "metadata": {},
                            "status": "active",
                            "created_at": now,
                            "created_by": "bench-scale",
                            "updated_at": now,
                            "uses_since_rotation": 0,
                            "ratelimits": [],
                            "ip_allowlist": [],
                        }
                        for key in keys[start : start + BATCH]
                    ],
                )
    finally:
        engine.dispose()


# ---- the server and its CPU --------------------------------------------------------------


@dataclass(frozen=True)
class Server:
    base: str
    pid: int


def _tree(pid: int) -> list[int]:
    """``pid`` and its children (uvicorn's worker processes)."""
    pids = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                pids.append(int(entry.name))
    return pids


def _cpu(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS
    return total


def _machine() -> float:
    user, nice, system = (int(f) for f in Path("/proc/stat").read_text().split()[1:4])
    return (user + nice + system) / _TICKS


@contextmanager
def serving(
    cli: str, database_url: str, log: Path, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[Server]:
    port = free_port()
    command = [cli, "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--database-url", database_url, "--workers", str(workers)]
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            if process.poll() is not None:
                raise BenchError(f"the server exited with {process.returncode}:\n{tail(log)}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise BenchError(f"the server did not answer within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(0.1)
        yield Server(base, process.pid)
    finally:
        stop(process)


@dataclass(frozen=True)
class Load:
    wrk: WrkResult
    cpu: CpuShare
    distinct_keys: int | None = None


def load(
    wrk: str, server: Server, args: argparse.Namespace, duration: int, script: Path, env: dict
) -> Load:
    pids = _tree(server.pid)
    before = (time.monotonic(), _cpu(pids), _machine(), _children())
    command_env = {**os.environ, **env}
    result, output = _wrk(wrk, server.base + "/v1/keys/verify", args, duration, script, command_env)
    wall = time.monotonic() - before[0]
    server_cpu = (_cpu(pids) - before[1]) / wall
    wrk_cpu = (_children() - before[3]) / wall
    other = max(0.0, (_machine() - before[2]) / wall - server_cpu - wrk_cpu)
    distinct = None
    for line in output.splitlines():
        if line.startswith("zipf-distinct-keys "):
            distinct = int(line.split()[1])
    return Load(result, CpuShare(server_cpu, wrk_cpu, other), distinct)


def _children() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _wrk(
    wrk: str, url: str, args: argparse.Namespace, duration: int, script: Path, env: dict
) -> tuple[WrkResult, str]:
    # run_wrk parses the figures; the Zipf script's own line needs the raw output too.
    command = [wrk, f"-t{args.threads}", f"-c{args.connections}", f"-d{duration}s", "--latency"]
    command += ["-s", str(script), url]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=duration + 60, env=env, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {mask(done.stderr.strip())}")
    from verify import parse_wrk

    return parse_wrk(done.stdout), done.stdout


# ---- cold and warm single verifications --------------------------------------------------


def cold_and_warm(server: Server, verifier: str, keys: Sequence[str]) -> dict[str, float]:
    """p50/p99 (ms) of verifying ``keys`` never seen by the server, then the same again."""
    out: dict[str, float] = {}
    with httpx.Client(base_url=server.base, timeout=30) as client:
        headers = {"Authorization": f"Bearer {verifier}"}
        client.post("/v1/keys/verify", headers=headers, json={"key": keys[0]})  # the connection
        for phase in ("cold", "warm"):
            times = []
            for key in keys[1:]:
                start = time.perf_counter()
                response = client.post(
                    "/v1/keys/verify", headers=headers, json={"key": key, "scopes": [SCOPE]}
                )
                times.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200 or response.json()["code"] != "VALID":
                    raise BenchError(f"verification answered {response.status_code}, not VALID")
            quantiles = statistics.quantiles(times, n=100)
            out[f"{phase}_p50_ms"] = quantiles[49]
            out[f"{phase}_p99_ms"] = quantiles[98]
    out["read_ms"] = out["cold_p50_ms"] - out["warm_p50_ms"]
    return out


# ---- the steady state, simulated --------------------------------------------------------


def steady_miss_rate(size: int, cache: int, s: float, draws: int, seed: int) -> float:
    """The share of verifications that miss the cache once it has settled, for Zipf(s)
    traffic over ``size`` keys and a cache of ``cache`` entries that evicts its oldest
    entry (InProcessKeyCache.put). A short wrk run cannot reach this state: at 10⁵ keys and
    more, most keys it asks about are first sights. Simulated over ``draws`` draws after as
    many to settle."""
    rng = random.Random(seed)
    cdf = list(itertools.accumulate(k**-s for k in range(1, size + 1)))
    total = cdf[-1]
    cached: dict[int, None] = {}
    misses = 0
    for n in range(2 * draws):
        rank = bisect.bisect_left(cdf, rng.random() * total)
        if rank in cached:
            continue
        if n >= draws:
            misses += 1
        if len(cached) >= cache:
            del cached[next(iter(cached))]
        cached[rank] = None
    return misses / draws


def steady_state(size: int, cache: int, args: argparse.Namespace) -> dict[str, float]:
    """The settled miss rate of the evicting cache, and the least any eviction order could
    reach (the traffic share of the keys ranked below the cache's size)."""
    weights = [k**-args.zipf_s for k in range(1, size + 1)]
    return {
        "miss_rate_fifo": steady_miss_rate(size, cache, args.zipf_s, args.draws, args.seed),
        "miss_rate_floor": sum(weights[cache:]) / sum(weights),
    }


# ---- the parts ---------------------------------------------------------------------------


@contextmanager
def database(backend: str, admin_url: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{workdir / 'scale.db'}"
        return
    name = f"keyplane_bench_scale_{secrets.token_hex(4)}"
    admin = make_url(admin_url).set(drivername="postgresql")
    rendered = admin.render_as_string(hide_password=False)
    with psycopg.connect(rendered, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(rendered, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def part_keys(args: argparse.Namespace, wrk: str, backend: str, workdir: Path) -> dict[str, Any]:
    cli = keyplane_cli()
    hasher = KeyHasher(os.environ["KEYPLANE_SECRET_KEY"].encode())
    rng = random.Random(args.seed)
    out: dict[str, Any] = {"backend": backend, "sizes": []}
    with database(backend, args.admin_url, workdir) as url:
        org_id, _admin = create_org(cli, url)
        verifier = mint(rng)
        insert_keys(url, hasher, org_id, [verifier], ["keys:verify"])
        keys: list[str] = []
        setup_total = 0.0
        for size in args.sizes:
            started = time.monotonic()
            more = [mint(rng) for _ in range(size - len(keys))]
            insert_keys(url, hasher, org_id, more, [SCOPE])
            keys += more
            setup = time.monotonic() - started
            setup_total += setup
            print(f"{backend}: {size:,} keys ({len(more):,} inserted in {setup:.1f} s)", flush=True)
            # Zipf ranks: line k of the file is rank k. The keys are random, so the ranks
            # fall anywhere in the table and its indexes.
            keys_file = workdir / "keys.txt"
            keys_file.write_text("\n".join(keys) + "\n")
            keys_file.chmod(0o600)
            cold = rng.sample(keys, min(args.cold + 1, len(keys)))
            row: dict[str, Any] = {"size": size, "setup_s": setup}
            with serving(cli, url, workdir / f"server-{backend}-{size}.log") as server:
                row["single"] = cold_and_warm(server, verifier, cold)
                # The same server on one key (rank 1, bench/verify.lua): what the spread of
                # the traffic costs, apart from the server's own speed at that moment.
                one = {
                    "KEYPLANE_BENCH_VERIFIER_KEY": verifier,
                    "KEYPLANE_BENCH_TARGET_KEY": keys[0],
                    "KEYPLANE_BENCH_SCOPE": SCOPE,
                }
                if args.warmup:
                    load(wrk, server, args, args.warmup, LUA_SCRIPT, one)
                row["one_key"] = asdict(load(wrk, server, args, args.duration, LUA_SCRIPT, one))
                zipf = {
                    "KEYPLANE_BENCH_VERIFIER_KEY": verifier,
                    "KEYPLANE_BENCH_KEYS_FILE": str(keys_file),
                    "KEYPLANE_BENCH_ZIPF_S": str(args.zipf_s),
                    "KEYPLANE_BENCH_SEED": str(args.seed),
                }
                if args.warmup:
                    load(wrk, server, args, args.warmup, ZIPF_SCRIPT, zipf)
                # Fresh draws from the same distribution, not a replay of the warm-up's.
                zipf["KEYPLANE_BENCH_SEED"] = str(args.seed + 1)
                row["zipf"] = asdict(load(wrk, server, args, args.duration, ZIPF_SCRIPT, zipf))
            if size > CACHE_DEFAULT:
                row["steady_state"] = steady_state(size, CACHE_DEFAULT, args)
            print(_describe(backend, row), flush=True)
            out["sizes"].append(row)
            keys_file.unlink()
        out["setup_total_s"] = setup_total
    return out


def _describe(backend: str, row: dict[str, Any]) -> str:
    zipf = row["zipf"]
    text = (
        f"  {backend} {row['size']:>9,} keys: "
        f"{zipf['wrk']['requests_per_sec']:>8,.0f} req/s, p99 {zipf['wrk']['p99_ms']:.2f} ms, "
        f"{zipf['distinct_keys']:,} distinct keys, server CPU {zipf['cpu']['server']:.0%}, "
        f"wrk {zipf['cpu']['wrk']:.0%}, other {zipf['cpu']['other']:.0%}, "
        f"non-2xx {zipf['wrk']['non_2xx_3xx']}"
    )
    if "one_key" in row:
        one = row["one_key"]
        share = zipf["wrk"]["requests_per_sec"] / one["wrk"]["requests_per_sec"]
        text += (
            f"\n    same server, one key: {one['wrk']['requests_per_sec']:,.0f} req/s "
            f"(zipf / one key {share:.1%}),"
            f" server CPU {one['cpu']['server']:.0%}, other {one['cpu']['other']:.0%}"
        )
    if "steady_state" in row:
        steady = row["steady_state"]
        text += (
            f"\n    settled cache (simulated): {steady['miss_rate_fifo']:.1%} of verifications "
            f"miss it (oldest-first eviction; {steady['miss_rate_floor']:.1%} at best)"
        )
    if "single" in row:
        s = row["single"]
        text += (
            f"\n    one at a time: cold p50 {s['cold_p50_ms']:.2f} ms (p99 {s['cold_p99_ms']:.2f}),"
            f" warm p50 {s['warm_p50_ms']:.2f} ms (p99 {s['warm_p99_ms']:.2f}):"
            f" a cold verification costs {s['read_ms']:.2f} ms more"
        )
    return text


def part_workers(args: argparse.Namespace, wrk: str, workdir: Path) -> dict[str, Any]:
    cli = keyplane_cli()
    hasher = KeyHasher(os.environ["KEYPLANE_SECRET_KEY"].encode())
    rng = random.Random(args.seed + 1)
    out: dict[str, Any] = {}
    with database("postgresql", args.admin_url, workdir) as url:
        org_id, _admin = create_org(cli, url)
        verifier, target = mint(rng), mint(rng)
        insert_keys(url, hasher, org_id, [verifier], ["keys:verify"])
        insert_keys(url, hasher, org_id, [target], [SCOPE])
        env = {
            "KEYPLANE_BENCH_VERIFIER_KEY": verifier,
            "KEYPLANE_BENCH_TARGET_KEY": target,
            "KEYPLANE_BENCH_SCOPE": SCOPE,
        }
        for workers in (1, 2):
            log = workdir / f"server-workers-{workers}.log"
            with serving(cli, url, log, workers=workers) as server:
                if args.warmup:
                    load(wrk, server, args, args.warmup, LUA_SCRIPT, env)
                measured = load(wrk, server, args, args.duration, LUA_SCRIPT, env)
            out[str(workers)] = asdict(measured)
            cpu = measured.cpu
            print(
                f"  postgresql --workers {workers}: {measured.wrk.requests_per_sec:,.0f} req/s, "
                f"p99 {measured.wrk.p99_ms:.2f} ms, server CPU {cpu.server:.0%} (all processes), "
                f"wrk {cpu.wrk:.0%}, other {cpu.other:.0%}, non-2xx {measured.wrk.non_2xx_3xx}",
                flush=True,
            )
    one, two = out["1"]["wrk"]["requests_per_sec"], out["2"]["wrk"]["requests_per_sec"]
    out["ratio_2_to_1"] = two / one if one else None
    return out


def summary(results: dict[str, Any]) -> list[str]:
    lines = []
    for part in results.get("keys", []):
        rows = part["sizes"]
        base = rows[0]["zipf"]["wrk"]["requests_per_sec"]
        lines.append(
            f"{part['backend']}: setup {part['setup_total_s']:.0f} s for {rows[-1]['size']:,} keys"
        )
        for row in rows:
            rps = row["zipf"]["wrk"]["requests_per_sec"]
            one = row["one_key"]["wrk"]["requests_per_sec"]
            line = (
                f"  {row['size']:>9,} keys: zipf {rps:>7,.0f} req/s = {rps / base:6.1%} of "
                f"{rows[0]['size']:,} keys, {rps / one:6.1%} of one key ({one:,.0f} req/s); "
                f"cold +{row['single']['read_ms']:.2f} ms"
            )
            if "steady_state" in row:
                line += f"; settled miss rate {row['steady_state']['miss_rate_fifo']:.1%}"
            lines.append(line)
    workers = results.get("workers")
    if workers:
        lines.append(
            f"postgresql, --workers 2 / --workers 1 throughput: {workers['ratio_2_to_1']:.2f}x"
        )
    return lines


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--parts", default="keys,workers")
    parser.add_argument("--duration", type=int, default=10, help="wrk seconds measured (10)")
    parser.add_argument("--warmup", type=int, default=5, help="wrk seconds before (5)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1)")
    parser.add_argument("--cold", type=int, default=300, help="cold verifications per size")
    parser.add_argument("--zipf-s", type=float, default=1.1)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--draws", type=int, default=1_000_000, help="simulated draws (10⁶)")
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args(argv)
    args.sizes = sorted(int(s) for s in args.sizes.split(","))
    args.backends = args.backends.split(",")
    args.parts = args.parts.split(",")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print("wrk is not installed: apt-get install -y wrk", file=sys.stderr)
        return 2
    # Every server and this script hash keys with one secret; no background jobs.
    os.environ["KEYPLANE_SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["KEYPLANE_RUN_JOBS"] = "false"
    results: dict[str, Any] = {"at": datetime.now(UTC).isoformat(), "args": vars(args)}
    try:
        with tempfile.TemporaryDirectory(prefix="keyplane-scale-") as tmp:
            if "keys" in args.parts:
                results["keys"] = [
                    part_keys(args, wrk, backend, Path(tmp)) for backend in args.backends
                ]
            if "workers" in args.parts:
                results["workers"] = part_workers(args, wrk, Path(tmp))
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except Exception:
        print(mask(traceback.format_exc()), file=sys.stderr)
        return 1
    print()
    for line in summary(results):
        print(line)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"scale-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results: {os.path.relpath(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
