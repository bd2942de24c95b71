"""What the README publishes for other scanners, and the pre-commit hook, say what
``keyplane scan`` does: the same pattern, a valid TOML rule, a hook that runs the command."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

from keyplane.domain.leaks import KEY_REGEX
from keyplane.domain.tokens import mint_key

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def section() -> str:
    start = README.index("## Finding leaked keys")
    return README[start : README.index("\n## ", start + 1)]


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section(), re.DOTALL)


def test_the_published_regex_is_the_one_keyplane_scan_uses() -> None:
    assert blocks("")[0].strip() == KEY_REGEX


def test_the_gitleaks_rule_is_valid_toml_with_the_same_regex() -> None:
    (rule,) = tomllib.loads(blocks("toml")[0])["rules"]
    assert rule["id"] == "keyplane-api-key"
    assert rule["regex"] == KEY_REGEX
    key = mint_key("test")
    assert any(keyword in key for keyword in rule["keywords"])  # gitleaks' pre-filter
    assert re.search(rule["regex"], f"token={key}", re.ASCII)


def test_the_pre_commit_hook_runs_keyplane_scan_on_the_committed_files() -> None:
    (hook,) = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "keyplane-scan"
    assert hook["entry"] == "keyplane scan"
    assert (hook["language"], hook["pass_filenames"]) == ("python", True)


def test_the_readme_snippets_for_pre_commit_use_that_hook() -> None:
    remote, local = (yaml.safe_load(block)["repos"][0] for block in blocks("yaml"))
    assert remote["hooks"] == [{"id": "keyplane-scan"}]
    assert local["hooks"][0]["entry"] == "keyplane scan"
