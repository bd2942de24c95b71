"""Benchmark: how long until every node answers a change made through another one?

Run: ``.venv/bin/python bench/revocation.py [--changes 200] [--nodes 3]
[--admin-url postgresql://postgres@127.0.0.1:5432/test]``

Starts ``--nodes`` ``keyplane serve`` processes on one fresh PostgreSQL database (created
on the server of ``--admin-url``, dropped afterwards), an organization, a gateway key
(``keys:verify``) and a target key. Every node but the first caches the target key. Then,
``--changes`` times, node A disables the key (or enables it again, alternating) and every
other node is polled, each by a thread of its own on a kept-alive connection, until it
answers the new verdict. Two delays per node and change:

- **after A's answer**: from the moment A answered the PATCH (the change committed before
  that) to the other node's first new verdict. A slight underestimate of the delay from
  COMMIT, by the time A took between its COMMIT and its answer.
- **after the request to A**: from sending the PATCH; an upper bound, which includes A's
  handling of the request before its COMMIT.

The poll resolution is one verification round trip (about a millisecond on loopback). The
target is the promise of the issue: the worst delay <= 1 s. It is a benchmark, not a test:
a missed target is reported, never an error exit. Results go to
bench/results/revocation-<UTC time>.json. Keys are never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy.engine import make_url

from verify import (  # bench/verify.py, beside this script
    BenchError,
    create_org,
    free_port,
    keyplane_cli,
    running_server,
)

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_SECONDS = 1.0
GIVE_UP_SECONDS = 10.0


def _verify(client: httpx.Client, gateway: str, key: str) -> str:
    response = client.post(
        "/v1/keys/verify", json={"key": key}, headers={"Authorization": f"Bearer {gateway}"}
    )
    response.raise_for_status()
    code: str = response.json()["code"]
    return code


def _poll(client: httpx.Client, gateway: str, key: str, expected: str) -> float:
    """The monotonic time at which the node first answered ``expected``."""
    deadline = time.monotonic() + GIVE_UP_SECONDS
    while time.monotonic() < deadline:
        if _verify(client, gateway, key) == expected:
            return time.monotonic()
    raise BenchError(f"a node did not answer {expected} within {GIVE_UP_SECONDS:.0f} s")


def measure(args: argparse.Namespace, database_url: str, workdir: Path) -> dict[str, Any]:
    cli = keyplane_cli()
    _, owner = create_org(cli, database_url)
    with ExitStack() as stack:
        servers = [
            stack.enter_context(
                running_server(cli, free_port(), database_url, workdir / f"node-{n}.log")
            )
            for n in range(args.nodes)
        ]
        clients = [
            stack.enter_context(httpx.Client(base_url=server.base, timeout=10))
            for server in servers
        ]
        api = clients[0]
        auth = {"Authorization": f"Bearer {owner}"}
        made = [
            api.post("/v1/keys", json={"name": name, "scopes": scopes}, headers=auth).json()
            for name, scopes in (("gateway", ["keys:verify"]), ("target", ["apps:read"]))
        ]
        gateway, target, target_id = made[0]["key"], made[1]["key"], made[1]["id"]
        others = clients[1:]
        for client in others:  # warm
            if _verify(client, gateway, target) != "VALID":
                raise BenchError("the target key does not verify before the first change")
        after_answer: list[float] = []
        after_request: list[float] = []
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=len(others)))
        for n in range(args.changes):
            status, expected = ("inactive", "DISABLED") if n % 2 == 0 else ("active", "VALID")
            sent = time.monotonic()
            response = api.patch(f"/v1/keys/{target_id}", json={"status": status}, headers=auth)
            answered = time.monotonic()
            response.raise_for_status()
            seen = pool.map(lambda c, e=expected: _poll(c, gateway, target, e), others)
            for at in seen:
                after_answer.append(at - answered)
                after_request.append(at - sent)
    return {"after_answer": after_answer, "after_request": after_request}


def _ms(value: float) -> str:
    return f"{value * 1000:.1f} ms"


def report(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {
        "changes": args.changes,
        "nodes": args.nodes,
        "observations": len(measured["after_answer"]),
    }
    for name in ("after_answer", "after_request"):
        values = sorted(measured[name])
        summary[name] = {
            "median_s": statistics.median(values),
            "p99_s": values[min(len(values) - 1, int(len(values) * 0.99))],
            "worst_s": values[-1],
        }
    worst = summary["after_request"]["worst_s"]
    summary["target_met"] = worst <= TARGET_SECONDS
    print(
        f"keyplane revocation benchmark: {args.changes} changes through node A, "
        f"{args.nodes - 1} other nodes polled ({summary['observations']} observations)"
    )
    for name, label in (("after_answer", "after A's answer"), ("after_request", "after request")):
        row = summary[name]
        print(
            f"  delay {label:<17} median {_ms(row['median_s']):>9}  p99 {_ms(row['p99_s']):>9}"
            f"  worst {_ms(row['worst_s']):>9}"
        )
    print(
        f"  target: worst <= {TARGET_SECONDS:g} s: {'met' if summary['target_met'] else 'NOT met'}"
    )
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument(
        "--admin-url",
        default=os.environ.get(
            "KEYPLANE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args(argv)
    if args.nodes < 2:  # one node changing, at least one other listening
        parser.error("--nodes must be at least 2")
    # The nodes inherit this environment: one secret for all of them, no background jobs.
    os.environ["KEYPLANE_SECRET_KEY"] = secrets.token_urlsafe(40)
    os.environ["KEYPLANE_RUN_JOBS"] = "false"
    name = f"keyplane_bench_revocation_{secrets.token_hex(4)}"
    admin = make_url(args.admin_url).set(drivername="postgresql")
    admin_url = admin.render_as_string(hide_password=False)
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory(prefix="keyplane-revocation-") as workdir:
            database_url = admin.set(database=name).render_as_string(hide_password=False)
            measured = measure(args, database_url, Path(workdir))
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    summary = report(args, measured)
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"revocation-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps({"summary": summary, "delays": measured}, indent=2) + "\n")
    print(f"  figures saved to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
