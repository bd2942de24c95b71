"""README's "Managing keys from a terminal" block, run as written with bash against the real
test server: ``keyplane`` on PATH is this checkout's, and only ``KP`` and ``KEYPLANE_URL``
are set, as the first session leaves them."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from support.remote_cli import CLI_VARIABLES, Cli

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/cli/test_cli_readme_terminal.py"


def block() -> str:
    text = README.read_text()
    start = text.index("```sh\n", text.index(MARKER)) + len("```sh\n")
    return text[start : text.index("```", start)]


@pytest.mark.skipif(shutil.which("jq") is None, reason="the block uses jq")
def test_the_terminal_block_runs_as_written(cli: Cli, tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "keyplane"
    shim.write_text(f'#!/bin/sh\nexec {sys.executable} -m keyplane "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if k not in CLI_VARIABLES}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env['PATH']}",
        PYTHONPATH=os.pathsep.join(p for p in sys.path if p),
        XDG_CONFIG_HOME=str(tmp_path / "config"),
        KP=cli.key,
        KEYPLANE_URL=cli.url,
    )
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block()],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("only time the full key is shown") == 2  # create, rotate
    assert "logged in to organization" in run.stdout
    events = (tmp_path / "audit.jsonl").read_text()
    assert '"action":"key.rotate"' in events.replace(" ", "")
    assert not (tmp_path / "config" / "keyplane" / "config.toml").exists()  # logged out
