"""The README's "Delegated keys" block, run as written with bash against a real server, a
key of its own in ``RUNNER``/``RUNNER_ID``: it answers a child of that key, shown once."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import CreatedKeys, Org
from support.serving import clean_env

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- tests/e2e/test_readme_children.py"


def block() -> str:
    text = README.read_text()
    start = text.index("```sh\n", text.index(MARKER)) + len("```sh\n")
    return text[start : text.index("```", start)]


@pytest.mark.skipif(shutil.which("curl") is None, reason="the block uses curl")
@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
def test_the_readme_delegation_block_creates_a_narrow_short_lived_child(
    org: Org, created_keys: CreatedKeys
) -> None:
    assert org.api.post("/v1/resources", json={"name": "models"}).status_code == 201
    runner = org.api.create_key(name="job runner", scopes=["models:read", "models:write"])

    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block()],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=clean_env(
            RUNNER=str(runner["key"]),
            RUNNER_ID=str(runner["id"]),
            KEYPLANE_URL=org.server.base_url,
        ),
    )

    assert run.returncode == 0, run.stderr
    child = json.loads(run.stdout)
    created_keys.add(child["key"])  # joins the search for leaked keys
    assert (child["parent_id"], child["depth"], child["scopes"]) == (
        runner["id"],
        1,
        ["models:read"],
    )
    assert org.api.verify(child["key"], ["models:read"])["code"] == "VALID"
    assert org.api.verify(child["key"], ["models:write"])["code"] == "INSUFFICIENT_SCOPE"
