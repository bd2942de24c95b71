"""The SDK's examples, in clients/python/README.md and the README's "Python SDK" section,
run against a real keyplane server (the server's address and keys put where the examples
hold placeholders). The mock example is run by test_sdk_mock.py."""

from __future__ import annotations

import contextlib
import io
import re
import textwrap
from pathlib import Path
from typing import Any

from keyplane_client import Keyplane

from conftest import Org
from support.aio import run

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER_URL = '"http://127.0.0.1:8000"'


def _python_blocks(text: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)


def _run(block: str, namespace: dict[str, Any]) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "README.md", "exec"), namespace)  # noqa: S102 - the README's own code
    return out.getvalue()


def test_the_sdk_readme_examples_run_against_a_real_server(sdk_org: Org, kp: Keyplane) -> None:
    kp.resources.create(name="models", actions=["read", "deploy"])
    quick_start, asynchronous, lists, errors = _python_blocks(
        (ROOT / "clients" / "python" / "README.md").read_text()
    )[:4]
    url, owner = repr(sdk_org.server.base_url), sdk_org.api.key
    assert PLACEHOLDER_URL in quick_start
    assert '"kp_live_…"' in quick_start

    namespace: dict[str, Any] = {}
    printed = _run(
        quick_start.replace(PLACEHOLDER_URL, url).replace('"kp_live_…"', repr(owner)), namespace
    )
    created = namespace["created"]
    assert printed.splitlines() == [
        f"{created.id} {created.masked_key}",
        f"{created.id} ['models:read'] {{'plan': 'pro'}} None",
    ]

    async def in_a_coroutine() -> str:
        body = textwrap.indent(asynchronous.replace(PLACEHOLDER_URL, url), "    ")
        scope: dict[str, Any] = {"api_key": owner, "presented_key": namespace["secret"]}
        exec(compile(f"async def main():\n{body}", "README.md", "exec"), scope)  # noqa: S102 - the README's own code
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            await scope["main"]()
        return out.getvalue()

    listed = run(in_a_coroutine)
    assert any(line.startswith(f"acme prod {created.masked_key} ") for line in listed.splitlines())

    app = kp.apps.create(name="readme app")
    scope = {"kp": kp, "app": app}
    _run(lists, scope)
    assert created.id in [k.id for k in scope["first_page"]]
    assert _run(errors, {"kp": kp}).startswith("scopes[0] ")


def test_the_readme_python_sdk_section_runs(sdk_org: Org, kp: Keyplane) -> None:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("## Python SDK")
    [block] = _python_blocks(readme[start : readme.index("\n## ", start)])
    gateway = kp.keys.create(name="gateway", scopes=["keys:verify"])
    customer = kp.keys.create(name="customer", scopes=["apps:read"], ip_allowlist=["192.0.2.0/24"])
    scope: dict[str, Any] = {
        "gateway_key": gateway.key,
        "presented_key": customer.key,
        "client_address": "198.51.100.7",
    }
    _run(block.replace(PLACEHOLDER_URL, repr(sdk_org.server.base_url)), scope)
    assert scope["verdict"].code == "IP_FORBIDDEN"
