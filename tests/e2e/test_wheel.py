"""The wheel carries everything the console renders and serves: its templates, its CSS and
JavaScript, and the vendored chart library with its licence. Files that are not Python
reach a wheel only through package-data, so a missing pattern there breaks an installed
console while every test run from the source tree passes."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).parents[2]
CONSOLE = ROOT / "src" / "keyplane" / "console"


def test_the_wheel_ships_the_consoles_templates_and_static_files(tmp_path: Path) -> None:
    # Built from a copy: a build in the worktree would leave build/ and egg-info behind.
    project = tmp_path / "project"
    shutil.copytree(
        ROOT / "src", project / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, project / name)
    dist = tmp_path / "dist"
    pip = (sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q")
    subprocess.run(
        [*pip, "--wheel-dir", str(dist), str(project)],
        check=True,
        capture_output=True,
    )
    (wheel,) = dist.glob("keyplane-*.whl")
    shipped = set(zipfile.ZipFile(wheel).namelist())

    served = {
        "keyplane/" + path.relative_to(CONSOLE.parent).as_posix()
        for folder in ("templates", "static")
        for path in (CONSOLE / folder).rglob("*")
        if path.is_file()
    }
    assert served - shipped == set()
    assert {
        "keyplane/console/static/usage.js",
        "keyplane/console/static/vendor/uplot/uPlot.iife.min.js",
        "keyplane/console/static/vendor/uplot/uPlot.min.css",
        "keyplane/console/static/vendor/uplot/LICENSE",
        "keyplane/console/templates/usage/_chart.html",
    } <= shipped
