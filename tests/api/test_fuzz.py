"""Schemathesis over the whole OpenAPI document, as an organization's owner, with every
check: no server error, no undocumented status code, no response outside its schema, no
invalid request accepted, the right ``Allow`` on every 405.

A small budget here (a few examples per operation, every phase); ``bench/fuzz.py`` runs
the same with a larger one. Both read ``schemathesis.toml`` at the project's root, which
says why one check accepts 422 and why PATCH skips one phase.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import Server

pytestmark = pytest.mark.fuzz

ROOT = Path(__file__).resolve().parents[2]
SCHEMATHESIS = str(Path(sys.executable).with_name("st"))


def test_the_api_keeps_its_documented_contract_under_fuzzing(
    sqlite_server: Server, tmp_path: Path
) -> None:
    # The fuzzer signs in as an organization's owner made by bench/fuzz_auth.py (and gets
    # a new one when it has revoked its own key), on this server's database.
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYPLANE_")}
    env |= {
        "SCHEMATHESIS_HOOKS": "fuzz_auth",
        "PYTHONPATH": str(ROOT / "bench"),
        "KEYPLANE_DATABASE_URL": sqlite_server.database_url,
    }
    run = subprocess.run(
        [
            SCHEMATHESIS,
            "--config-file",
            str(ROOT / "schemathesis.toml"),
            "--no-color",
            "run",
            f"{sqlite_server.base_url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "3",
            "--seed",
            "20261130",
            "--generation-database",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # schemathesis keeps a cache in its working directory
        env=env,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected is not None, report[-3000:]
    assert tested is not None, report[-3000:]
    assert selected[1] == selected[2] == tested[1], "every operation of the document is fuzzed"
    generated = re.search(r"(\d+) generated, (\d+) passed", report)
    assert generated is not None, report[-3000:]
    assert generated[1] == generated[2], report[-3000:]
    # Every operation was tested signed in, but GitHub's: it takes only reports signed with
    # GitHub's key, which the fuzzer cannot make, so it hears 401 throughout (its signature
    # check is tested with a real key pair: test_github_secret_scanning.py).
    failed = re.search(r"Authentication failed.*?\n\n(.*?)💡", report, re.S)
    unauthenticated = set(re.findall(r"- ([A-Z]+ \S+)", failed[1])) if failed else set()
    assert unauthenticated <= {"POST /v1/github/secret-scanning"}, report[-3000:]
