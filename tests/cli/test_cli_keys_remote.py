"""``keyplane keys …`` against a real server over loopback, through the SDK."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta

import pytest

from keyplane.cli import keys as keys_module
from keyplane.domain.tokens import parse_key
from keyplane_client import Keyplane

from support.remote_cli import Cli, run_keyplane


def test_create_prints_the_full_key_once_with_a_notice(cli: Cli) -> None:
    result = cli("keys", "create", "acme", "--scopes", "api_keys:read,apps:read")
    assert result.exit_code == 0, result.output
    (key_line,) = [line for line in result.stdout.splitlines() if line.startswith("key ")]
    key = key_line.split()[-1]
    assert parse_key(key) is not None
    assert "only time the full key is shown" in result.stderr
    assert "FULL ACCESS" not in result.output
    key_id = _field(result.stdout, "id")

    shown = cli("keys", "show", key_id)
    assert shown.exit_code == 0, shown.output
    assert key not in shown.output
    assert key[-4:] in _field(shown.stdout, "masked key")
    assert "api_keys:read, apps:read" in shown.stdout
    listed = cli("keys", "list")
    assert key_id in listed.stdout
    assert key not in listed.output
    # The key works: it may read keys, as its scopes say.
    assert cli("keys", "show", key_id, KEYPLANE_API_KEY=key).exit_code == 0


def test_create_without_scopes_warns_of_full_access(cli: Cli) -> None:
    result = cli("keys", "create", "everything")
    assert result.exit_code == 0, result.output
    assert "FULL ACCESS" in result.stderr


def test_create_from_a_preset_copies_its_scopes(cli: Cli, kp: Keyplane) -> None:
    kp.presets.create(name="dashboard", scopes=["api_keys:read", "apps:read"])
    created = cli.json("keys", "create", "from a preset", "--preset", "dashboard")
    assert created["scopes"] == ["api_keys:read", "apps:read"]
    assert created["preset"]["name"] == "dashboard"
    unknown = cli("keys", "create", "nope", "--preset", "no such preset")
    assert unknown.exit_code == 1
    assert "preset" in unknown.stderr


def test_create_json_carries_the_key_and_every_option(cli: Cli) -> None:
    app = cli.json("apps", "create", "acme", "--scopes", "api_keys:read")
    created = cli.json(
        "keys",
        "create",
        "acme prod",
        "--app",
        app["id"],
        "--scopes",
        "api_keys:read",
        "--expires-in",
        "30d",
        "--metadata",
        "plan=pro",
        "--metadata",
        "seats=5",
        "--description",
        "the production key",
        "--environment",
        "test",
    )
    assert parse_key(created["key"]) is not None
    assert created["key"].startswith("kp_test_")
    assert created["app_id"] == app["id"]
    assert created["scopes"] == ["api_keys:read"]
    assert created["metadata"] == {"plan": "pro", "seats": 5}
    assert created["description"] == "the production key"
    # Whole days are counted by the server, from its own clock (which tests move forward).
    expires = datetime.fromisoformat(created["expires_at"])
    server_now = cli.org.server.clock()
    assert abs(expires - (server_now + timedelta(days=30))) < timedelta(minutes=5)


def test_expires_in_hours_sets_a_time(cli: Cli) -> None:
    # Not whole days: the CLI computes the time from its own clock. (Long enough to stay
    # ahead of the test server's clock, which other tests move forward by days.)
    created = cli.json("keys", "create", "short", "--expires-in", "245h")
    expires = datetime.fromisoformat(created["expires_at"])
    assert abs(expires - (datetime.now(UTC) + timedelta(hours=245))) < timedelta(minutes=5)


def test_list_follows_every_page(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    made = {cli.json("keys", "create", f"key {n}")["id"] for n in range(5)}
    monkeypatch.setattr(keys_module, "PAGE_SIZE", 2)  # 6 keys (the owner's too): 3 pages
    listed = cli.json("keys", "list")
    ids = [key["id"] for key in listed]
    assert made | {cli.org.owner_key_id} == set(ids)
    assert len(ids) == len(set(ids)) == 6
    assert all("key" not in key for key in listed)
    assert len(cli.json("keys", "list", "--limit", "3")) == 3


def test_list_filters_by_app_and_status(cli: Cli) -> None:
    app = cli.json("apps", "create", "acme")
    in_app = cli.json("keys", "create", "in app", "--app", app["id"])
    other = cli.json("keys", "create", "other")
    assert [k["id"] for k in cli.json("keys", "list", "--app", app["id"])] == [in_app["id"]]
    assert cli("keys", "disable", other["id"], "--yes").exit_code == 0
    inactive = cli.json("keys", "list", "--status", "inactive")
    assert [k["id"] for k in inactive] == [other["id"]]
    table = cli("keys", "list", "--status", "inactive")
    assert other["id"] in table.stdout
    assert "inactive" in table.stdout
    assert cli("keys", "list", "--status", "sleeping").exit_code == 2


def test_update_changes_description_metadata_and_expiry(cli: Cli) -> None:
    key_id = cli.json("keys", "create", "acme")["id"]
    changed = cli.json(
        "keys",
        "update",
        key_id,
        "--description",
        "now described",
        "--metadata",
        "tier=gold",
        "--expires-at",
        "2030-01-31T00:00:00Z",
    )
    assert changed["description"] == "now described"
    assert changed["metadata"] == {"tier": "gold"}
    assert changed["expires_at"].startswith("2030-01-31T00:00:00")
    cleared = cli.json("keys", "update", key_id, "--no-expiry")
    assert cleared["expires_at"] is None
    nothing = cli("keys", "update", key_id)
    assert nothing.exit_code == 2
    assert "nothing to change" in nothing.stderr


def test_disable_asks_and_refuses_to_guess_without_a_terminal(cli: Cli) -> None:
    key_id = cli.json("keys", "create", "acme")["id"]
    refused = cli("keys", "disable", key_id)  # CliRunner's stdin is not a terminal
    assert refused.exit_code == 2
    assert "Pass --yes" in refused.stderr
    assert cli.json("keys", "show", key_id)["status"] == "active"
    disabled = cli.json("keys", "disable", key_id, "--yes")
    assert disabled["status"] == "inactive"
    assert cli.json("keys", "enable", key_id)["status"] == "active"


def test_rotate_shows_the_successor_once_and_links_them(cli: Cli) -> None:
    old = cli.json("keys", "create", "acme", "--scopes", "apps:read")
    result = cli("keys", "rotate", old["id"], "--grace", "1h", "--yes")
    assert result.exit_code == 0, result.output
    assert "only time the full key is shown" in result.stderr
    new_key = result.stdout.split("\nkey ")[1].split()[0]
    assert parse_key(new_key) is not None
    new_id = _field(result.stdout, "id")
    assert _field(result.stdout, "rotated from") == old["id"]
    assert cli.json("keys", "show", old["id"])["rotated_to"] == new_id
    again = cli("keys", "rotate", old["id"], "--yes")
    assert again.exit_code == 1  # 409: a key is rotated once
    assert "(409)" in again.stderr


def test_delete_asks_first_then_the_key_is_gone(cli: Cli) -> None:
    key_id = cli.json("keys", "create", "acme")["id"]
    assert cli("keys", "delete", key_id).exit_code == 2
    assert cli("keys", "show", key_id).exit_code == 0
    assert cli.json("keys", "delete", key_id, "-y") == {"id": key_id, "deleted": True}
    gone = cli("keys", "show", key_id)
    assert gone.exit_code == 4
    assert "(404)" in gone.stderr


def test_an_answer_at_the_terminal_decides(cli: Cli) -> None:
    """At a real terminal the question is asked: "n" or end of input (Ctrl-D) cancels
    (exit 6), "y" deletes."""
    key_id = cli.json("keys", "create", "acme")["id"]
    for typed, code in (("n\n", 6), ("\x04", 6), ("y\n", 0)):
        primary, secondary = os.openpty()
        try:
            process = run_keyplane(
                ["keys", "delete", key_id],
                cli.env(),
                stdin=secondary,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            os.write(primary, typed.encode())
            _, stderr = process.communicate(timeout=60)
        finally:
            os.close(primary)
            os.close(secondary)
        assert process.returncode == code, stderr.decode()
        assert f"Delete {key_id} for good?" in stderr.decode()
        exists = cli("keys", "show", key_id).exit_code == 0
        assert exists == (code == 6)


def test_invalid_input_prints_each_field_error(cli: Cli) -> None:
    result = cli("keys", "create", "acme", "--scopes", "not a scope")
    assert result.exit_code == 1
    assert "(422)" in result.stderr
    assert "scopes[0]:" in result.stderr
    as_json = cli("keys", "create", "acme", "--scopes", "not a scope", "--json")
    assert as_json.exit_code == 1
    assert as_json.stdout == ""
    problem = json.loads(as_json.stderr)
    assert problem["status"] == 422
    assert problem["errors"][0]["field"] == "scopes[0]"


def test_usage_errors_exit_2_before_any_request(cli: Cli) -> None:
    for args in (
        ["keys", "create", "a", "--expires-in", "soon"],
        ["keys", "create", "a", "--expires-at", "2099-01-01T00:00:00"],  # no zone
        ["keys", "create", "a", "--expires-in", "1d", "--expires-at", "2099-01-01T00:00:00Z"],
        ["keys", "create", "a", "--metadata", "novalue"],
        ["keys", "create", "a", "--scopes", "x:y", "--preset", "p"],
        ["keys", "rotate", "key_x", "--grace", "later", "--yes"],
    ):
        result = cli(*args)
        assert result.exit_code == 2, (args, result.output)


def test_authentication_and_permission_errors_exit_3(cli: Cli) -> None:
    reader = cli.json("keys", "create", "reader", "--scopes", "api_keys:read")["key"]
    refused = cli("keys", "create", "more", KEYPLANE_API_KEY=reader)
    assert refused.exit_code == 3
    assert "(403)" in refused.stderr
    assert "api_keys:write" in refused.stderr
    disabled = cli.json("keys", "create", "soon disabled")
    cli("keys", "disable", disabled["id"], "--yes")
    unknown = cli("keys", "list", KEYPLANE_API_KEY=disabled["key"])
    assert unknown.exit_code == 3
    assert "(401)" in unknown.stderr


def test_an_unreachable_server_exits_5(cli: Cli) -> None:
    result = cli("keys", "list", KEYPLANE_URL="http://127.0.0.1:9")
    assert result.exit_code == 5
    assert "cannot reach the keyplane server" in result.stderr
    assert cli.key not in result.output


def _field(stdout: str, label: str) -> str:
    """The value of one ``label  value`` line of a shown object."""
    for line in stdout.splitlines():
        if line.startswith(f"{label}  "):
            return line[len(label) :].strip()
    raise AssertionError(f"no {label!r} in:\n{stdout}")
