"""The API client commands (``keyplane keys …``) run against the real test server: an
organization of its own on the SQLite server (``sdk_org``), and a runner whose environment
names that server and the owner's key (or nothing, for the login and precedence tests).

The commands go through the SDK and loopback HTTP like any remote user's; one backend is
enough, since the server's behaviour on each is the API tests' business.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from keyplane.cli.main import app

from conftest import CreatedKeys, Org

# Every variable the CLI reads: a test's invocation sees only those it sets.
CLI_VARIABLES = ("KEYPLANE_URL", "KEYPLANE_API_KEY", "KEYPLANE_PROFILE", "KEYPLANE_CONFIG")


class Cli:
    """``keyplane`` as a user of ``org`` runs it: KEYPLANE_URL and KEYPLANE_API_KEY set
    (unless ``connected=False``), the config file in the test's own directory."""

    def __init__(self, org: Org, config: Path, created: CreatedKeys) -> None:
        self.org = org
        self.url = org.server.base_url
        self.key = org.api.key
        self.config = config
        self._created = created
        self._runner = CliRunner()

    def env(self, connected: bool = True, **extra: str | None) -> dict[str, str | None]:
        env: dict[str, str | None] = dict.fromkeys(CLI_VARIABLES)
        env["KEYPLANE_CONFIG"] = str(self.config)
        if connected:
            env["KEYPLANE_URL"] = self.url
            env["KEYPLANE_API_KEY"] = self.key
        env.update(extra)
        return env

    def __call__(
        self, *args: str, input: str | None = None, connected: bool = True, **env: str | None
    ) -> Result:
        result = self._runner.invoke(app, list(args), input=input, env=self.env(connected, **env))
        self._note_secrets(result.stdout)
        return result

    def json(self, *args: str, **env: str | None) -> Any:
        """The command's --json output, parsed; the command must succeed."""
        result = self(*args, "--json", **env)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def _note_secrets(self, stdout: str) -> None:
        # Webhook secrets join the leak search (keys are recorded by the server itself).
        for word in stdout.replace('"', " ").split():
            self._created.add_webhook_secret(word)


@pytest.fixture
def cli(sdk_org: Org, tmp_path: Path, created_keys: CreatedKeys) -> Cli:
    """The CLI acting as the owner of the SDK tests' organization (support.sdk)."""
    return Cli(sdk_org, tmp_path / "keyplane" / "config.toml", created_keys)


MAIN = "from keyplane.cli.main import main; main()"


def run_keyplane(
    args: list[str], env: Mapping[str, str | None], *, probe: str = MAIN, **popen: Any
) -> subprocess.Popen[bytes]:
    """``keyplane ARGS`` as a separate process (``probe``: other code in its place),
    importing this checkout's modules, so a run from a source tree needs no install."""
    environment = {k: v for k, v in os.environ.items() if k not in CLI_VARIABLES}
    environment.update({k: v for k, v in env.items() if v is not None})
    environment["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    command = [sys.executable, "-c", probe, *args]
    return subprocess.Popen(command, env=environment, **popen)
