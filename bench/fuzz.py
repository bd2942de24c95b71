"""The long API fuzzing run: schemathesis over the whole OpenAPI document, every check.

Run: ``.venv/bin/python bench/fuzz.py [--max-examples 100] [--seed N] [--workers 1]``

It starts ``keyplane serve`` on a throw-away SQLite database and a free loopback port, and
runs ``st run`` with ``--checks all`` and the project's ``schemathesis.toml``: every phase
(examples, coverage, fuzzing, stateful), as an organization's owner (bench/fuzz_auth.py
makes the organization, and a new one whenever the fuzzer has revoked its own key). The
suite runs the same with three examples per operation (tests/api/test_fuzz.py); this is
the larger budget.

Exit status: schemathesis's (0: no server error, no undocumented status, no schema
violation, no failed check), or 1 when the setup failed. Schemathesis masks the
Authorization header in its report; the server log is printed only when the server fails
to start (with anything shaped like a key masked).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
_KEY = re.compile(r"kp_(live|test)_[0-9A-Za-z]{38}")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_healthy(url: str, proc: subprocess.Popen[bytes], seconds: float = 30) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:  # noqa: S310
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()

    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    with tempfile.TemporaryDirectory(prefix="keyplane-fuzz-") as tmp:
        database_url = f"sqlite:///{Path(tmp) / 'fuzz.db'}"
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "serve.log"
        with log.open("wb") as sink:
            server = subprocess.Popen(
                [
                    str(BIN / "keyplane"),
                    "serve",
                    "--port",
                    str(port),
                    "--database-url",
                    database_url,
                ],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=tmp,
            )
        try:
            if not _wait_healthy(url, server):
                print("setup failed: keyplane serve did not start:")
                print(_KEY.sub("kp_…", log.read_text()))
                return 1
            command = [
                str(BIN / "st"),
                "--config-file",
                str(ROOT / "schemathesis.toml"),
                "run",
                f"{url}/openapi.json",
                "--checks",
                "all",
                "--max-examples",
                str(args.max_examples),
                "--workers",
                str(args.workers),
            ]
            if args.seed is not None:
                command += ["--seed", str(args.seed)]
            started = time.monotonic()
            status = subprocess.run(
                command, check=False, cwd=tmp, env=fuzzing_env(env, database_url)
            ).returncode
            print(f"fuzzing took {time.monotonic() - started:.0f} s; exit status {status}")
            return status
        finally:
            server.send_signal(signal.SIGINT)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


def fuzzing_env(env: dict[str, str], database_url: str) -> dict[str, str]:
    """Schemathesis's environment: the owner-key hooks of bench/fuzz_auth.py, which make
    organizations on the server's database."""
    return {
        **env,
        "SCHEMATHESIS_HOOKS": "fuzz_auth",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "bench"), env.get("PYTHONPATH")])),
        "KEYPLANE_DATABASE_URL": database_url,
    }


if __name__ == "__main__":
    sys.exit(main())
