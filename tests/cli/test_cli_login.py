"""``keyplane login`` / ``logout``, the profile file's permissions, and where the URL and
key come from (option > environment > profile), against the real test server."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path

from keyplane.domain.tokens import mint_key

from support.remote_cli import Cli


def _login(cli: Cli, key: str, *more: str) -> None:
    result = cli(
        "login", "--url", cli.url, "--api-key-stdin", *more, input=f"{key}\n", connected=False
    )
    assert result.exit_code == 0, result.output
    assert key not in result.output


def test_login_checks_the_key_and_saves_a_private_profile(cli: Cli) -> None:
    result = cli(
        "login", "--url", cli.url, "--api-key-stdin", input=f"{cli.key}\n", connected=False
    )
    assert result.exit_code == 0, result.output
    assert cli.org.id in result.stdout
    assert cli.key not in result.output
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    assert stat.S_IMODE(cli.config.parent.stat().st_mode) == 0o700
    saved = tomllib.loads(cli.config.read_text())
    assert saved["profiles"]["default"] == {"url": cli.url, "api_key": cli.key}
    # Nothing but the profile now: no URL or key in the environment.
    listed = cli("keys", "list", "--json", connected=False)
    assert listed.exit_code == 0, listed.output
    assert cli.org.owner_key_id in listed.stdout


def test_a_key_the_server_refuses_is_not_saved(cli: Cli) -> None:
    result = cli(
        "login",
        "--url",
        cli.url,
        "--api-key-stdin",
        input=mint_key("live") + "\n",
        connected=False,
    )
    assert result.exit_code == 3
    assert "(401)" in result.stderr
    assert not cli.config.exists()


def test_a_key_without_org_read_is_saved_with_a_note(cli: Cli) -> None:
    reader = cli.json("keys", "create", "reader", "--scopes", "api_keys:read")["key"]
    result = cli(
        "login", "--url", cli.url, "--api-key-stdin", "--json", input=reader + "\n", connected=False
    )
    assert result.exit_code == 0, result.output
    assert "may not read its organization" in result.stderr
    assert '"organization": null' in result.stdout


def test_login_without_a_terminal_needs_the_key_on_stdin(cli: Cli) -> None:
    result = cli("login", "--url", cli.url, connected=False)
    assert result.exit_code == 2
    assert "--api-key-stdin" in result.stderr
    assert not cli.config.exists()


def test_profiles_sit_side_by_side_and_logout_removes_one(cli: Cli) -> None:
    _login(cli, cli.key)
    _login(cli, cli.key, "--profile", "staging")
    assert set(tomllib.loads(cli.config.read_text())["profiles"]) == {"default", "staging"}
    assert cli("keys", "list", "--profile", "staging", connected=False).exit_code == 0
    assert cli("logout", "--profile", "staging").exit_code == 0
    assert set(tomllib.loads(cli.config.read_text())["profiles"]) == {"default"}
    missing = cli("keys", "list", "--profile", "staging", connected=False)
    assert missing.exit_code == 2
    assert "no profile 'staging'" in missing.stderr
    assert cli("logout").exit_code == 0
    assert not cli.config.exists()
    nothing = cli("keys", "list", connected=False)
    assert nothing.exit_code == 2
    assert "keyplane login" in nothing.stderr


def test_a_config_file_others_can_read_is_refused(cli: Cli) -> None:
    _login(cli, cli.key)
    cli.config.chmod(0o640)
    result = cli("keys", "list", connected=False)
    assert result.exit_code == 2
    assert "accessible to other users (mode 0640)" in result.stderr
    assert f"chmod 600 {cli.config}" in result.stderr
    assert cli.key not in result.output


def test_the_option_beats_the_environment_which_beats_the_profile(cli: Cli) -> None:
    _login(cli, cli.key)
    wrong = mint_key("live")
    # The environment's key wins over the profile's: refused (401), so it was used.
    from_env = cli("keys", "list", connected=False, KEYPLANE_API_KEY=wrong)
    assert from_env.exit_code == 3
    assert "the key came from KEYPLANE_API_KEY" in from_env.stderr
    # The option wins over the environment.
    from_option = cli("keys", "list", "--api-key", cli.key, connected=False, KEYPLANE_API_KEY=wrong)
    assert from_option.exit_code == 0, from_option.output
    from_url_option = cli("keys", "list", "--url", "http://127.0.0.1:9", connected=False)
    assert from_url_option.exit_code == 2  # the profile's key is not for that server


def test_a_refused_profile_key_says_where_it_came_from(cli: Cli) -> None:
    made = cli.json("keys", "create", "soon disabled")
    _login(cli, made["key"])
    assert cli("keys", "disable", made["id"], "--yes").exit_code == 0  # as the owner
    result = cli("keys", "list", connected=False)
    assert result.exit_code == 3
    assert "(401)" in result.stderr
    assert "the key came from profile 'default'" in result.stderr


def test_a_profile_key_is_never_sent_to_another_server(cli: Cli) -> None:
    _login(cli, cli.key)
    result = cli("keys", "list", connected=False, KEYPLANE_URL="http://127.0.0.1:9")
    assert result.exit_code == 2
    assert "no API key for http://127.0.0.1:9" in result.stderr
    assert cli.key not in result.output


def test_help_says_where_the_connection_comes_from(cli: Cli, tmp_path: Path) -> None:
    result = cli("keys", "list", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    assert "the option (--url, --api-key), the environment (KEYPLANE_URL, KEYPLANE_API_KEY)" in text
    top = cli("--help")
    assert "Exit status of the API commands" in top.stdout
    assert "4  not found" in top.stdout
