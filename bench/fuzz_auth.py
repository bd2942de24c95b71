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

import httpx
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
        created = json.loads(made.stdout)
        key: str = created["api_key"]
        self.org_id: str = created["org_id"]
        return key

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"
        if case.path == "/v1/auth/nginx" and "X-Keyplane-Org" in case.headers:
            # Judged under the organization named in X-Keyplane-Org, by its route table
            # (empty in a new organization, and the fuzzer rewrites it through PATCH
            # /v1/org): the fuzzer's own, with one rule admitting any valid key, set again
            # before each case, so the fuzzer reaches more than 401 and 403 there.
            case.headers["X-Keyplane-Org"] = self.org_id
            httpx.patch(
                f"{case.operation.base_url.rstrip('/')}/v1/org",
                json={"route_table": [{"method": "*", "path": "/**", "scopes": []}]},
                headers={"Authorization": f"Bearer {data}"},
                timeout=30,
            ).raise_for_status()
