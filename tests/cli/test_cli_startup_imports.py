"""The API client commands start without the server: ``keyplane keys list`` imports no
FastAPI, SQLAlchemy or keyplane.app (about 1.5 s of imports it never uses). The time itself
is measured in bench/cli_startup.py, not here."""

from __future__ import annotations

import json
import subprocess

import pytest

from support.remote_cli import run_keyplane

SERVER_MODULES = (
    "keyplane.app",
    "keyplane.api",
    "keyplane.storage",
    "keyplane.services",
    "keyplane.settings",
    "fastapi",
    "starlette",
    "sqlalchemy",
    "alembic",
    "uvicorn",
    "psycopg",
    "redis",
)

PROBE = """
import json, sys
from keyplane.cli.main import main
sys.argv = ["keyplane", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(sys.modules)), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["keys", "list", "--help"],
        ["keys", "list", "--url", "http://127.0.0.1:9", "--api-key", "kp_live_x", "--json"],
    ],
)
def test_client_commands_import_nothing_of_the_server(args: list[str]) -> None:
    process = run_keyplane(args, {}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, probe=PROBE)
    _, stderr = process.communicate(timeout=60)
    loaded = json.loads(stderr.decode().strip().splitlines()[-1])
    heavy = [
        m
        for m in loaded
        if m.split(".")[0] in {"fastapi", "starlette", "sqlalchemy"}
        or any(m == s or m.startswith(s + ".") for s in SERVER_MODULES)
    ]
    assert heavy == []


WITHOUT_SDK = """
import sys
sys.modules["keyplane_client"] = None  # as where keyplane-client is not installed
from keyplane.cli.main import main
main()
"""


def test_without_the_sdk_the_api_commands_say_what_to_install() -> None:
    args = ["keys", "list", "--url", "http://127.0.0.1:9", "--api-key", "kp_live_x"]
    process = run_keyplane(
        args, {}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, probe=WITHOUT_SDK
    )
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "need the keyplane-client package" in stderr.decode()
