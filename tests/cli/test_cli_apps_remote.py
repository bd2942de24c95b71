"""``keyplane apps …`` against a real server over loopback."""

from __future__ import annotations

from support.remote_cli import Cli


def test_an_app_is_created_listed_changed_and_deleted_with_its_keys(cli: Cli) -> None:
    app = cli.json("apps", "create", "acme", "--scopes", "api_keys:read", "--description", "A")
    assert app["scopes"] == ["api_keys:read"]
    assert app["full_access"] is False
    key = cli.json("keys", "create", "acme key", "--app", app["id"])
    assert key["effective_scopes"] == ["api_keys:read"]

    listed = cli("apps", "list")
    assert listed.exit_code == 0, listed.output
    (row,) = [line for line in listed.stdout.splitlines() if app["id"] in line]
    assert "acme" in row
    assert "api_keys:read" in row
    assert [a["id"] for a in cli.json("apps", "list")] == [app["id"]]

    shown = cli("apps", "show", app["id"])
    assert "keys" in shown.stdout
    changed = cli.json("apps", "update", app["id"], "--name", "acme inc", "--scopes", "apps:read")
    assert changed["name"] == "acme inc"
    assert changed["scopes"] == ["apps:read"]
    # The app's scopes govern its keys at once.
    assert cli.json("keys", "show", key["id"])["effective_scopes"] == ["apps:read"]

    assert cli("apps", "delete", app["id"]).exit_code == 2  # asks; no terminal here
    assert cli.json("apps", "delete", app["id"], "--yes") == {"id": app["id"], "deleted": True}
    assert cli("apps", "show", app["id"]).exit_code == 4
    assert cli("keys", "show", key["id"]).exit_code == 4


def test_an_app_without_scopes_says_full_access(cli: Cli) -> None:
    result = cli("apps", "create", "open")
    assert result.exit_code == 0, result.output
    assert "FULL ACCESS" in result.stdout


def test_an_empty_list_says_so_and_json_is_an_empty_array(cli: Cli) -> None:
    result = cli("apps", "list")
    assert result.exit_code == 0
    assert result.stdout == ""
    assert "no apps" in result.stderr
    assert cli.json("apps", "list") == []


def test_names_with_markup_are_printed_as_given(cli: Cli) -> None:
    result = cli("apps", "create", "[bold]acme[/bold]")
    assert result.exit_code == 0, result.output
    assert "[bold]acme[/bold]" in result.stdout
