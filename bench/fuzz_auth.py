"""Schemathesis hooks: the fuzzer's credentials, an owner key that outlives the fuzzer.

Fuzzing as an owner means the fuzzer may delete, disable or shorten its own key (all
allowed), after which every later operation would be tested only as a 401; or give its
organization (PATCH /v1/org) or its key rate limits or a quota that then hold its own key
to them, after which it would be tested only as a 429. On a 401 or a 429 this provider
makes a new organization with ``keyplane orgs create`` beside the running server
(on ``KEYPLANE_DATABASE_URL``) and schemathesis replays the request with its owner key.

Loaded by ``SCHEMATHESIS_HOOKS=fuzz_auth`` with this folder on ``PYTHONPATH`` (bench/fuzz.py
and tests/api/test_fuzz.py set both).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import schemathesis

KEYPLANE = str(Path(sys.executable).with_name("keyplane"))


# Refreshed only on a 401 or a 429, never on a timer.
@schemathesis.auth(refresh_interval=10**9, retry_on=[401, 429])
class OwnerKey:
    def get(self, case: Any, context: Any) -> str:
        suffix = secrets.token_hex(4)
        made = subprocess.run(
            [
                KEYPLANE,
                "orgs",
                "create",
                f"Fuzz {suffix}",
                "--owner-email",
                f"fuzz-{suffix}@example.com",
                "--json",
            ],
            capture_output=True,
            text=True,
            check=True,
            env=os.environ,
        )
        key: str = json.loads(made.stdout)["api_key"]
        return key

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
