"""``keyplane audit export`` and ``keyplane usage`` against a real server over loopback;
``keyplane audit verify`` (on the database) keeps working beside them (test_cli_audit.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

from support import eventually
from support.remote_cli import Cli


def test_audit_export_writes_the_events_as_json_lines(cli: Cli, tmp_path: Path) -> None:
    key_id = cli.json("keys", "create", "audited")["id"]
    target = tmp_path / "audit.jsonl"
    done = cli.json("audit", "export", "--output", str(target))
    assert done == {"output": str(target), "bytes": target.stat().st_size}
    events = [json.loads(line) for line in target.read_text().splitlines()]
    created = [e for e in events if e["action"] == "key.create" and e["target"]["id"] == key_id]
    assert len(created) == 1
    assert not list(tmp_path.glob(".*partial"))


def test_audit_export_to_stdout_as_csv_with_filters(cli: Cli) -> None:
    cli.json("keys", "create", "audited")
    cli.json("apps", "create", "audited app")
    result = cli("audit", "export", "--format", "csv", "--action", "app.")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(result.stdout.splitlines()))
    assert [row["action"] for row in rows] == ["app.create"]
    since = cli("audit", "export", "--since", "2000-01-01T00:00:00Z", "--until", "1d")
    assert since.exit_code == 0, since.output
    assert since.stdout == ""  # nothing before a day ago: the organization is new
    bad = cli("audit", "export", "--since", "yesterday")
    assert bad.exit_code == 2


def test_audit_export_needs_the_audit_scope(cli: Cli) -> None:
    reader = cli.json("keys", "create", "reader", "--scopes", "api_keys:read")["key"]
    result = cli("audit", "export", KEYPLANE_API_KEY=reader)
    assert result.exit_code == 3
    assert "audit:read" in result.stderr


def test_usage_counts_verifications_by_outcome(cli: Cli) -> None:
    key = cli.json("keys", "create", "counted", "--scopes", "apps:read")
    for scopes in (["apps:read"], ["apps:read"], ["apps:write"]):
        cli.org.api.verify(str(key["key"]), scopes)

    def counted() -> dict[str, int] | None:
        series = cli.json("usage", "--key", key["id"], "--granularity", "minute")
        totals: dict[str, int] = {}
        for point in series["data"]:
            for code, n in point["counts"].items():
                totals[code] = totals.get(code, 0) + n
        return totals if sum(totals.values()) == 3 else None

    assert eventually(counted) == {"VALID": 2, "INSUFFICIENT_SCOPE": 1}
    table = cli("usage", "--key", key["id"], "--granularity", "minute")
    assert table.exit_code == 0, table.output
    assert "VALID" in table.stdout
    assert "INSUFFICIENT_SCOPE" in table.stdout
    assert f"usage of key {key['id']} by minute" in table.stderr
    assert cli("usage", "--granularity", "week").exit_code == 2
