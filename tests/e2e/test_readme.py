"""The README's first session, run as written: its walkthrough block, with bash, against
``keyplane serve --demo``, with only what the README tells the reader to set (``KP`` from
the printed ``export KP=…`` line; ``KEYPLANE_URL`` where the server listens)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CreatedKeys, free_port
from support.serving import clean_env, serve

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/e2e/test_readme.py"


def walkthrough() -> str:
    text = README.read_text()
    start = text.index("```sh\n", text.index(MARKER)) + len("```sh\n")
    return text[start : text.index("```", start)]


def test_the_walkthrough_sets_every_variable_it_uses() -> None:
    block = walkthrough()
    used = set(re.findall(r"\$\{?([A-Z_]+)", block))
    assigned = set(re.findall(r"^([A-Z_]+)=", block, flags=re.MULTILINE))
    assert used - assigned == {"KP", "KEYPLANE_URL"}


@pytest.mark.skipif(shutil.which("curl") is None, reason="the walkthrough uses curl")
def test_the_readme_walkthrough_runs_as_written_and_ends_VALID(
    tmp_path: Path, created_keys: CreatedKeys
) -> None:
    for process in serve(tmp_path, free_port(), "--demo"):
        printed = re.search(r"^  export KP=(\S+)$", process.output(), flags=re.MULTILINE)
        assert printed is not None, process.output()
        created_keys.add(printed[1])
        run = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", walkthrough()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env=clean_env(KP=printed[1], KEYPLANE_URL=process.base_url),
        )
        assert run.returncode == 0, run.stderr
        verdicts = [json.loads(line) for line in run.stdout.splitlines()]
        assert [v["code"] for v in verdicts] == ["INSUFFICIENT_SCOPE", "VALID"]
        assert verdicts[0]["missing_scopes"] == ["models:deploy"]
        final = verdicts[-1]
        assert final["valid"] is True
        assert final["scopes"] == ["models:read"]
        assert final["profile"]["name"] == "free-tier"
