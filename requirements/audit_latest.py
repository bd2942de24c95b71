"""Known vulnerabilities in the lock, from PyPI's project pages: `make audit`'s fallback.

pip-audit asks PyPI about each pinned release (``/pypi/NAME/VERSION/json``). Where only
the project pages (``/pypi/NAME/json``) can be reached, as on machines whose proxy lets
through nothing else, this script audits what those pages can tell: the advisories of
each project's *latest* release. A pin that is the latest release is audited exactly as
pip-audit would audit it. An older pin cannot be audited here: it is listed, and
``make lock LOCK_ARGS=--upgrade`` moves it to the latest release.

Run: ``python requirements/audit_latest.py requirements/lock.txt``
Exit status: 0 no known vulnerability in the pins audited, 1 a vulnerability, 3 PyPI
could not be reached (nothing was audited).
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", re.MULTILINE)
TIMEOUT = 15.0  # s per project page
LOOKUPS_AT_ONCE = 8


class Unreachable(Exception):
    """PyPI's project pages could not be read."""


def project(name: str) -> dict[str, Any]:
    url = f"https://pypi.org/pypi/{name}/json"  # a fixed https host: no file:// or other scheme
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
            page: dict[str, Any] = json.load(response)
    except (OSError, ValueError) as exc:
        raise Unreachable(f"{url}: {exc}") from exc
    return page


def audit(pins: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """The vulnerabilities found, and the pins that are not their project's latest release."""
    with ThreadPoolExecutor(LOOKUPS_AT_ONCE) as pool:
        pages = list(pool.map(project, (name for name, _ in pins)))
    found, older = [], []
    for (name, version), page in zip(pins, pages, strict=True):
        latest = page["info"]["version"]
        if latest != version:
            older.append(f"{name} {version} (latest {latest})")
            continue
        for vuln in page.get("vulnerabilities") or []:
            if vuln.get("withdrawn"):
                continue
            fixed = ", ".join(vuln.get("fixed_in") or []) or "no fixed release"
            found.append(f"{name} {version}: {vuln.get('id')} (fixed in: {fixed})")
    return found, older


def main(argv: list[str]) -> int:
    lock = Path(argv[1] if len(argv) > 1 else "requirements/lock.txt")
    pins = PIN.findall(lock.read_text())
    try:
        found, older = audit(pins)
    except Unreachable as exc:
        print(f"audit_latest: PyPI's project pages cannot be reached either: {exc}")
        return 3
    audited = len(pins) - len(older)
    for line in found:
        print(f"VULNERABLE {line}")
    print(
        f"audit_latest: {audited} of {len(pins)} pins of {lock} are their project's latest "
        f"release and were audited: {len(found)} known vulnerabilities."
    )
    if older:
        print(
            f"audit_latest: NOT audited here, older than their latest release: "
            f"{', '.join(older)}. `make lock LOCK_ARGS=--upgrade` updates them."
        )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
