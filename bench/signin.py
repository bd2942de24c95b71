"""Benchmark: does signing in to the console slow down key verification?

Run: ``.venv/bin/python bench/signin.py [--duration 10] [--verifiers 4] [--sign-ins 16]``

One run starts ``keyplane serve`` (one worker) on a throw-away SQLite database, creates a
verifier key, a target key and ``--sign-ins`` console users with passwords, then measures
``POST /v1/keys/verify`` with wrk (``--verifiers`` connections) twice:

* alone;
* while ``--sign-ins`` clients keep signing in through ``POST /console/login``, as a
  browser does: the login page first (its CSRF cookie and form token), then the form.
  Most attempts use the right password, one in ``--wrong-every`` a wrong one.

Sign-in is expensive on purpose (argon2id), and anyone can post the form. It must cost
the people who verify keys little: the target is a verification p99 during sign-ins at
most ``MAX_RATIO`` times the p99 without them. The report prints PASS or FAIL against it
and writes the same figures as JSON to bench/results/.

It is a benchmark, not a test: a missed target is reported, never turned into a failure.
Exit status: 0 measured, 1 the setup failed, 2 wrk is not installed.

Keys and passwords are secrets: none is printed or saved. Any text that might quote a
key (a server log, a traceback) is masked before printing.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from verify import (
    BUSY_WARNING,
    HTTP_TIMEOUT,
    LUA_SCRIPT,
    RESULTS_DIR,
    SCOPE,
    BenchError,
    Row,
    Server,
    WrkResult,
    check_valid,
    cpu_snapshot,
    create_key,
    create_org,
    free_port,
    keyplane_cli,
    mask,
    print_table,
    run_wrk,
    running_server,
)

MAX_RATIO = 2.0  # the target: verify p99 during sign-ins / verify p99 alone
# Fewer answers than this in a phase, and its p99 is close to its slowest answer: a lower
# bound, since wrk counts no request still waiting when the run ends.
FEW_ANSWERS = 100

LOGIN = "/console/login"
CSRF_COOKIE = "kp_login_csrf"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
# Each sign-in client speaks from its own loopback address (127.1.<client>.<n>; Linux
# routes all of 127.0.0.0/8 to the loopback interface), so one client's wrong passwords
# do not count against another's. After this many wrong passwords a client moves to a
# fresh address, well before the server's per-address allowance, so the load stays real
# argon2 verifications and never turns into cheap 429 answers.
WRONG_PER_ADDRESS = 5
MAX_ADDRESSES = 254  # per client: 127.1.<client>.1 to .254

SIGN_IN_TIMEOUT = 60.0  # s for one sign-in request: a stalled server takes seconds
WRK_TIMEOUT = 60  # s: wrk leaves slower answers out of its latency figures
RAMP_TIMEOUT = 60.0  # s for every sign-in client to finish its first attempt
RAMP_GRACE = 30.0  # s the sign-in clients may run past the measurement before they stop
MAX_ATTEMPTS = 100_000  # per sign-in client: a bound on the loop besides its deadline


# ---- sign-in clients ---------------------------------------------------------------------


@dataclass(frozen=True)
class Person:
    email: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class Attempt:
    finished: float  # monotonic seconds
    seconds: float  # how long the POST took
    outcome: str  # "signed in", "wrong password", "throttled", or what went wrong


def create_people(client: httpx.Client, admin_key: str, count: int) -> list[Person]:
    """``count`` viewers with passwords, created through ``POST /v1/users``."""
    people = []
    for n in range(count):
        person = Person(f"signin-{n:02d}@example.com", secrets.token_urlsafe(18))
        response = client.post(
            "/v1/users",
            headers={"Authorization": f"Bearer {admin_key}"},
            json={"email": person.email, "role": "viewer", "password": person.password},
        )
        if response.status_code != 201:
            # Its detail names the field and reason; it never repeats the password.
            detail = response.json().get("detail") if response.content else ""
            raise BenchError(f"POST /v1/users answered {response.status_code}: {detail}")
        people.append(person)
    return people


def _cookie(response: httpx.Response, name: str) -> str | None:
    # Read from the header: the cookie is Secure, and httpx's jar would not send it back
    # over plain HTTP (a browser does, to localhost).
    for header in response.headers.get_list("set-cookie"):
        key, _, rest = header.partition("=")
        if key.strip() == name:
            return rest.split(";", 1)[0]
    return None


def sign_in(client: httpx.Client, person: Person, password: str) -> tuple[str, float]:
    """One sign-in as a browser does it: its outcome and how long the POST took."""
    client.cookies.clear()
    form = client.get(LOGIN)
    token, cookie = CSRF_FIELD.search(form.text), _cookie(form, CSRF_COOKIE)
    if form.status_code != 200 or token is None or cookie is None:
        return f"GET {LOGIN} answered {form.status_code} without a CSRF token", 0.0
    client.cookies.clear()
    start = time.perf_counter()
    answer = client.post(
        LOGIN,
        data={"csrf_token": token[1], "email": person.email, "password": password, "next": ""},
        headers={"Cookie": f"{CSRF_COOKIE}={cookie}"},
    )
    seconds = time.perf_counter() - start
    right = password == person.password
    expected = 303 if right else 401
    if answer.status_code == expected:
        return ("signed in" if right else "wrong password"), seconds
    if answer.status_code == 429:
        return "throttled", seconds
    which = "right" if right else "wrong"
    return f"{answer.status_code} to a {which} password", seconds


class SignInLoad:
    """``len(people)`` threads, each signing one person in again and again until stopped."""

    def __init__(self, base: str, people: Sequence[Person], wrong_every: int) -> None:
        self._base = base
        self._people = people
        self._wrong_every = wrong_every
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._attempts: list[Attempt] = []
        self._errors: list[str] = []
        self._first_done: set[int] = set()
        self._deadline = 0.0

    @contextmanager
    def running(self, measure_seconds: float) -> Iterator[SignInLoad]:
        """Starts the clients, waits until each has finished one attempt, and always stops
        them on exit (each also stops by itself at its deadline)."""
        self._deadline = time.monotonic() + RAMP_TIMEOUT + measure_seconds + RAMP_GRACE
        threads = [
            threading.Thread(target=self._client, args=(n, p), name=f"sign-in-{n}", daemon=True)
            for n, p in enumerate(self._people)
        ]
        for thread in threads:
            thread.start()
        try:
            ramp_until = time.monotonic() + RAMP_TIMEOUT
            while len(self._first_done) < len(threads) and time.monotonic() < ramp_until:
                if self._errors:
                    raise BenchError(f"a sign-in client failed: {self._errors[0]}")
                time.sleep(0.05)
            if len(self._first_done) < len(threads):
                raise BenchError(
                    f"only {len(self._first_done)} of {len(threads)} sign-in clients "
                    f"finished a first attempt within {RAMP_TIMEOUT:.0f} s"
                )
            yield self
        finally:
            self._stop.set()
            for thread in threads:
                thread.join(timeout=SIGN_IN_TIMEOUT + 5)

    def between(self, start: float, end: float) -> list[Attempt]:
        with self._lock:
            return [a for a in self._attempts if start <= a.finished <= end]

    @property
    def errors(self) -> list[str]:
        with self._lock:
            return list(self._errors)

    def _client(self, index: int, person: Person) -> None:
        try:
            self._sign_in_repeatedly(index, person)
        except Exception as exc:  # reported by the main thread, masked
            with self._lock:
                self._errors.append(mask(f"{type(exc).__name__}: {exc}"))

    def _sign_in_repeatedly(self, index: int, person: Person) -> None:
        wrong = "not-" + person.password  # a wrong password of the same length and shape
        address, wrong_here = 1, 0
        client = self._client_from(index, address)
        try:
            for attempt in range(MAX_ATTEMPTS):
                if self._stop.is_set() or time.monotonic() > self._deadline:
                    return
                right = (attempt + index) % self._wrong_every != 0
                if not right and wrong_here >= WRONG_PER_ADDRESS:
                    client.close()
                    address, wrong_here = address + 1, 0
                    if address > MAX_ADDRESSES:
                        raise BenchError(f"sign-in client {index} ran out of addresses")
                    client = self._client_from(index, address)
                try:
                    outcome, seconds = sign_in(client, person, person.password if right else wrong)
                except httpx.TransportError as exc:
                    outcome, seconds = f"transport error ({type(exc).__name__})", 0.0
                if not right:
                    wrong_here += 1
                with self._lock:
                    self._attempts.append(Attempt(time.monotonic(), seconds, outcome))
                    self._first_done.add(index)
        finally:
            client.close()

    def _client_from(self, index: int, address: int) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=f"127.1.{index}.{address}")
        return httpx.Client(base_url=self._base, transport=transport, timeout=SIGN_IN_TIMEOUT)


def check_sign_in(base: str, person: Person) -> None:
    """One right and one wrong password by hand, so the load is known to do what it says."""
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as client:
        for password, expected in ((person.password, "signed in"), ("wrong", "wrong password")):
            outcome, _ = sign_in(client, person, password)
            if outcome != expected:
                raise BenchError(f"a sign-in by hand gave {outcome!r}, expected {expected!r}")


# ---- measuring ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cpu:
    """CPU used during one wrk run, in cores (1.0 = one core busy all the time)."""

    server: float | None
    wrk: float
    clients: float  # this process: the sign-in clients
    other: float | None


@dataclass(frozen=True)
class Phase:
    wrk: WrkResult
    cpu: Cpu
    seconds: float
    sign_ins: dict[str, int]  # outcome -> attempts finished during the wrk run
    sign_in_p50_ms: float | None
    sign_in_p99_ms: float | None


@dataclass(frozen=True)
class Results:
    alone: Phase
    during: Phase
    # Verification while a plain busy loop at idle priority keeps the other cores busy: what
    # any CPU work beside the server costs here, whoever does it (the machine's floor).
    control: Phase


BUSY_LOOP = "while :; do :; done"


@contextmanager
def busy_other_cores(seconds: float) -> Iterator[None]:
    """One shell busy loop per other core, at SCHED_IDLE (``chrt -i 0``), for the control."""
    count = max(1, (os.cpu_count() or 2) - 1)
    loops = [
        subprocess.Popen(
            ["chrt", "-i", "0", "timeout", str(int(seconds) + 5), "sh", "-c", BUSY_LOOP],
            start_new_session=True,  # its own process group: the loop dies with it
        )
        for _ in range(count)
    ]
    try:
        yield
    finally:
        for loop in loops:
            os.killpg(loop.pid, signal.SIGKILL)
            loop.wait()


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure_verify(
    wrk: str,
    server: Server,
    args: argparse.Namespace,
    env: dict[str, str],
    load: SignInLoad | None = None,
) -> Phase:
    before, self_before = cpu_snapshot(server.pid), _self_cpu()
    result = run_wrk(
        wrk,
        server.base + "/v1/keys/verify",
        duration=args.duration,
        connections=args.verifiers,
        threads=1,
        script=LUA_SCRIPT,
        env=env,
        timeout=WRK_TIMEOUT,
    )
    after, self_after = cpu_snapshot(server.pid), _self_cpu()
    wall = after.at - before.at
    server_cpu = None
    if before.server is not None and after.server is not None:
        server_cpu = (after.server - before.server) / wall
    wrk_cpu = (after.children - before.children) / wall
    clients = (self_after - self_before) / wall
    other = None
    if before.machine_busy is not None and after.machine_busy is not None and server_cpu:
        busy = (after.machine_busy - before.machine_busy) / wall
        other = max(0.0, busy - server_cpu - wrk_cpu - clients)  # 100 Hz ticks: never < 0
    attempts = load.between(before.at, after.at) if load is not None else []
    ok = sorted(a.seconds * 1000 for a in attempts if a.seconds > 0)
    quantiles = statistics.quantiles(ok, n=100) if len(ok) > 1 else ok * 99
    return Phase(
        wrk=result,
        cpu=Cpu(server_cpu, wrk_cpu, clients, other),
        seconds=wall,
        sign_ins=dict(Counter(a.outcome for a in attempts)),
        sign_in_p50_ms=quantiles[49] if quantiles else None,
        sign_in_p99_ms=quantiles[98] if quantiles else None,
    )


def measure(args: argparse.Namespace, wrk: str, workdir: Path) -> Results:
    """The whole run in ``workdir``, which holds the database, its secret and the server log."""
    cli = keyplane_cli()
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    _org_id, admin_key = create_org(cli, database_url)
    with running_server(cli, free_port(), database_url, workdir / "server.log") as server:
        print(f"server pid {server.pid} at {server.base}", flush=True)  # for py-spy --pid
        with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
            verifier_key = create_key(client, admin_key, "bench-verifier", ["keys:verify"])
            target_key = create_key(client, admin_key, "bench-target", [SCOPE])
            check_valid(client, verifier_key, target_key)  # also loads both into the cache
            print(f"creating {args.sign_ins} console users ...", flush=True)
            people = create_people(client, admin_key, args.sign_ins)
        check_sign_in(server.base, people[0])
        # wrk reads the keys from its environment (see verify.lua), not its command line.
        env = {
            **os.environ,
            "KEYPLANE_BENCH_VERIFIER_KEY": verifier_key,
            "KEYPLANE_BENCH_TARGET_KEY": target_key,
            "KEYPLANE_BENCH_SCOPE": SCOPE,
        }
        if args.warmup > 0:
            print(f"warming up ({args.warmup} s) ...", flush=True)
            run_wrk(
                wrk,
                server.base + "/v1/keys/verify",
                duration=args.warmup,
                connections=args.verifiers,
                threads=1,
                script=LUA_SCRIPT,
                env=env,
                timeout=WRK_TIMEOUT,
            )
        print(f"measuring verification alone for {args.duration} s ...", flush=True)
        alone = measure_verify(wrk, server, args, env)
        load = SignInLoad(server.base, people, args.wrong_every)
        print(f"starting {args.sign_ins} sign-in clients ...", flush=True)
        with load.running(args.duration):
            print(f"measuring verification during sign-ins for {args.duration} s ...", flush=True)
            during = measure_verify(wrk, server, args, env, load)
        if load.errors:
            raise BenchError(f"a sign-in client failed: {load.errors[0]}")
        print(f"measuring verification beside an idle-priority busy loop for {args.duration} s ...")
        with busy_other_cores(args.duration + args.warmup):
            control = measure_verify(wrk, server, args, env)
        with httpx.Client(base_url=server.base, timeout=HTTP_TIMEOUT) as client:
            check_valid(client, verifier_key, target_key)  # the verdict held throughout
    return Results(alone, during, control)


# ---- the report --------------------------------------------------------------------------


def ratio_of(results: Results) -> float | None:
    """p99 during sign-ins / p99 alone; None when a phase got no answer at all."""
    if min(results.alone.wrk.requests, results.during.wrk.requests) == 0:
        return None
    return results.during.wrk.p99_ms / results.alone.wrk.p99_ms


def verdict(results: Results, sign_in_clients: int) -> tuple[bool, str]:
    """Whether the target is met, and one sentence saying why."""
    ratio = ratio_of(results)
    if ratio is None:
        return False, (
            f"no verification finished in one phase ({results.alone.wrk.requests:,} answers "
            f"alone, {results.during.wrk.requests:,} during sign-ins): wrk's connections "
            "waited on a stalled server throughout."
        )
    bound = " at least" if results.during.wrk.requests < FEW_ANSWERS else ""
    return ratio <= MAX_RATIO, (
        f"verification p99 was{bound} {ratio:,.1f}x its p99 alone while {sign_in_clients} "
        f"clients signed in (target: at most {MAX_RATIO:g}x)."
    )


def closed_loop_mean_ms(phase: Phase, connections: int) -> float | None:
    """Mean latency implied by a closed loop: each connection waits for its answer."""
    if phase.wrk.requests == 0:
        return None
    return connections * phase.seconds / phase.wrk.requests * 1000


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.2f} ms"


def _latency(phase: Phase, value: float) -> str:
    return _ms(value) if phase.wrk.requests else "no answer"


def rows(results: Results, env: dict[str, Any]) -> list[Row]:
    alone, during = results.alone, results.during
    ratio = ratio_of(results)
    met, _ = verdict(results, env["sign_in_clients"])
    implied = closed_loop_mean_ms(during, env["verify_connections"])
    clean = all(p.wrk.non_2xx_3xx == 0 and p.wrk.socket_errors == 0 for p in (alone, during))
    counts = during.sign_ins
    total = sum(counts.values())
    ok, wrong = counts.get("signed in", 0), counts.get("wrong password", 0)
    rest = total - ok - wrong
    return [
        ("verify p50, alone", _latency(alone, alone.wrk.p50_ms), "", ""),
        ("verify p99, alone", _latency(alone, alone.wrk.p99_ms), "", ""),
        ("verify throughput, alone", f"{alone.wrk.requests_per_sec:,.0f} req/s", "", ""),
        ("verify requests measured, alone", f"{alone.wrk.requests:,}", "", ""),
        ("verify p50, during sign-ins", _latency(during, during.wrk.p50_ms), "", ""),
        ("verify p99, during sign-ins", _latency(during, during.wrk.p99_ms), "", ""),
        ("verify throughput, during sign-ins", f"{during.wrk.requests_per_sec:,.0f} req/s", "", ""),
        ("verify requests measured, during", f"{during.wrk.requests:,}", "", ""),
        ("verify mean implied, during", "no answer" if implied is None else _ms(implied), "", ""),
        (
            "verify p99 during sign-ins / alone",
            "n/a: no answer" if ratio is None else f"{ratio:,.1f}x",
            f"<= {MAX_RATIO:g}x",
            "PASS" if met else "FAIL",
        ),
        (
            "verify non-2xx / socket errors",
            f"{alone.wrk.non_2xx_3xx} / {alone.wrk.socket_errors} alone, "
            f"{during.wrk.non_2xx_3xx} / {during.wrk.socket_errors} during",
            "0 / 0",
            "yes" if clean else "NO",
        ),
        (
            "sign-ins during the run",
            f"{total} ({total / during.seconds:.1f}/s): {ok} ok, {wrong} wrong, {rest} other",
            "",
            "",
        ),
        ("sign-in POST p50", _ms(during.sign_in_p50_ms), "", ""),
        ("sign-in POST p99", _ms(during.sign_in_p99_ms), "", ""),
        (
            "control: verify p99 beside a busy loop",
            _latency(results.control, results.control.wrk.p99_ms),
            "",
            "",
        ),
        (
            "verify p99 during sign-ins / control",
            "n/a: no answer"
            if not results.control.wrk.requests or not during.wrk.requests
            else f"{during.wrk.p99_ms / results.control.wrk.p99_ms:,.1f}x",
            "",
            "",
        ),
    ]


def notes(results: Results, env: dict[str, Any]) -> list[str]:
    during = results.during
    lines = [
        f"machine: {env['cpus']} CPUs ({env['machine']}), Python {env['python']}. The server, "
        "wrk, the sign-in clients and everything else running share them.",
        "CPU used during each run (100% = one core busy throughout):",
    ]
    for name, phase in (("alone", results.alone), ("during sign-ins", during)):
        cpu = phase.cpu
        lines.append(
            f"  {name:<16} server {_cores(cpu.server):>5}   wrk {_cores(cpu.wrk):>5}   "
            f"sign-in clients {_cores(cpu.clients):>5}   other processes {_cores(cpu.other):>5}"
        )
    busy = [p.cpu.other for p in (results.alone, during) if p.cpu.other is not None]
    if busy and max(busy) > BUSY_WARNING:
        lines.append(
            f"WARNING: other processes used up to {max(busy):.0%} of a core during the runs; "
            "these figures are disturbed. Run again on a quiet machine."
        )
    others = {k: v for k, v in during.sign_ins.items() if k not in ("signed in", "wrong password")}
    if others:
        listed = ", ".join(f"{v} {k}" for k, v in sorted(others.items()))
        lines.append(f"sign-in answers other than 303/401: {listed}")
    if not during.sign_ins:
        lines.append("WARNING: no sign-in finished during the measured run.")
    met, why = verdict(results, env["sign_in_clients"])
    lines.append(f"{'PASS' if met else 'FAIL'}: {why}")
    return lines


def _cores(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0%}"


def environment(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "verify_connections": args.verifiers,
        "sign_in_clients": args.sign_ins,
        "wrong_every": args.wrong_every,
        "wrk_threads": 1,
        "server_workers": 1,
    }


def save(results: Results, table: list[Row], lines: list[str], env: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(exist_ok=True)
    now = datetime.now(UTC)
    path = RESULTS_DIR / f"signin-{now:%Y%m%dT%H%M%SZ}.json"
    document = {
        "benchmark": "signin",
        "at": now.isoformat(),
        "environment": env,
        "results": asdict(results),
        "p99_ratio": ratio_of(results),
        "passed": verdict(results, env["sign_in_clients"])[0],
        "target_max_ratio": MAX_RATIO,
        "report": [dict(zip(("figure", "value", "target", "met"), r, strict=True)) for r in table],
        "notes": lines,
    }
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    return path


# ---- main --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per phase (10)")
    parser.add_argument("--warmup", type=int, default=2, help="wrk seconds before measuring (2)")
    parser.add_argument("--verifiers", type=int, default=4, help="wrk connections verifying (4)")
    parser.add_argument("--sign-ins", type=int, default=16, help="clients signing in (16)")
    parser.add_argument(
        "--wrong-every", type=int, default=4, help="one attempt in N has a wrong password (4)"
    )
    args = parser.parse_args(argv)
    if min(args.duration, args.verifiers, args.sign_ins, args.wrong_every) < 1:
        parser.error("--duration, --verifiers, --sign-ins and --wrong-every must be >= 1")
    if args.sign_ins > 250:
        parser.error("--sign-ins is at most 250 (one loopback /24 each)")
    if args.warmup < 0:
        parser.error("--warmup must be >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    wrk = shutil.which("wrk")
    if wrk is None:
        print(
            "wrk is not installed; it drives the verification part of this benchmark.\n"
            "Install it with:  apt-get install -y wrk   (macOS: brew install wrk)",
            file=sys.stderr,
        )
        return 2
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the sign-in clients and the
    # server and delete the temporary directory.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
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
        print(mask(traceback.format_exc()), file=sys.stderr)
        return 1
    env = environment(args)
    table = rows(results, env)
    lines = notes(results, env)
    print_table(
        f"keyplane sign-in benchmark: verification over {args.verifiers} wrk connections, "
        f"{args.sign_ins} clients signing in, 1 server worker, {args.duration} s per phase",
        table,
        lines,
    )
    print(f"results: {os.path.relpath(save(results, table, lines, env))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
