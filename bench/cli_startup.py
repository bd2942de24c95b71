"""How long a CLI command takes from start to exit: ``keyplane --version`` (start-up
alone) and ``keyplane keys list --json`` against a local server (start-up, one SDK call,
the answer printed), next to the import of keyplane's server app, which every command paid
before the client commands imported it lazily.

    .venv/bin/python bench/cli_startup.py [--runs 10]

A benchmark, not a test: it prints each command's fastest and median wall and CPU time
and exits 0
(1 when the setup failed). Commands run as ``python -m keyplane`` with this interpreter, so
the checkout on PYTHONPATH (or the installed keyplane) is what is measured.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from verify import (  # bench/verify.py, beside this script
    BenchError,
    create_org,
    free_port,
    keyplane_cli,
    running_server,
)


def timed(command: list[str], env: dict[str, str], runs: int) -> list[tuple[float, float]]:
    """Each run's wall time and CPU time (user + system): on a busy machine the wall time
    includes waiting for a core, the CPU time does not."""
    figures = []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(command, env=env, capture_output=True, check=False)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        figures.append((wall, cpu))
        if done.returncode != 0:
            raise BenchError(f"{command[3:]} exited {done.returncode}")
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per command (10)")
    args = parser.parse_args()
    keyplane = [sys.executable, "-m", "keyplane"]
    with tempfile.TemporaryDirectory(prefix="keyplane-bench-cli-") as directory:
        database_url = f"sqlite:///{Path(directory) / 'keyplane.db'}"
        try:
            _, key = create_org(keyplane_cli(), database_url)
            port = free_port()
            with running_server(keyplane_cli(), port, database_url, Path(directory) / "log"):
                env = {**os.environ, "KEYPLANE_URL": f"http://127.0.0.1:{port}"}
                env["KEYPLANE_API_KEY"] = key
                env["KEYPLANE_CONFIG"] = str(Path(directory) / "config.toml")
                figures = {
                    "keyplane --version": timed([*keyplane, "--version"], env, args.runs),
                    "keyplane keys list --json": timed(
                        [*keyplane, "keys", "list", "--json"], env, args.runs
                    ),
                    "python -c 'import keyplane.app' (what every command paid before)": timed(
                        [sys.executable, "-c", "import keyplane.app"], env, args.runs
                    ),
                }
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    print(f"{'command':<68} {'wall min':>9} {'median':>8} {'CPU min':>8} {'median':>8}")
    for name, runs in figures.items():
        wall, cpu = [w for w, _ in runs], [c for _, c in runs]
        print(
            f"{name:<68} {min(wall):>8.3f}s {statistics.median(wall):>7.3f}s "
            f"{min(cpu):>7.3f}s {statistics.median(cpu):>7.3f}s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
