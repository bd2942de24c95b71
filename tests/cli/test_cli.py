"""The ``keyplane`` command line: migrate and orgs create, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from keyplane import __version__
from keyplane.cli.main import app
from keyplane.domain.tokens import parse_key

from conftest import TEST_SECRET, CreatedKeys

runner = CliRunner()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


def test_orgs_create_prints_the_org_the_owner_and_the_key_once(
    sqlite_url: str, created_keys: CreatedKeys
) -> None:
    result = runner.invoke(
        app,
        [
            "orgs",
            "create",
            "Acme",
            "--owner-email",
            "Ada@Example.com",
            "--database-url",
            sqlite_url,
        ],
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("organization  org_")
    assert lines[0].endswith("Acme")
    assert lines[1].startswith("owner         usr_")
    assert lines[1].endswith("ada@example.com")
    key = lines[2].split()[-1]
    created_keys.add(key)
    assert parse_key(key) is not None
    assert "cannot be shown again" in result.stdout


def test_orgs_create_json_is_one_object(sqlite_url: str, created_keys: CreatedKeys) -> None:
    result = runner.invoke(
        app,
        [
            "orgs",
            "create",
            "Acme",
            "--owner-email",
            "a@acme.io",
            "--database-url",
            sqlite_url,
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert set(body) == {"org_id", "user_id", "api_key", "owner_password"}
    assert len(body["owner_password"]) >= 12
    created_keys.add(body["api_key"])
    assert body["org_id"].startswith("org_")
    assert body["user_id"].startswith("usr_")
    assert parse_key(body["api_key"]) is not None


def test_an_owner_of_several_organizations_keeps_the_password_they_have(
    sqlite_url: str, created_keys: CreatedKeys
) -> None:
    args = ["orgs", "create", "A", "--owner-email", "dup@acme.io", "--database-url", sqlite_url]
    first = runner.invoke(app, [*args, "--json"])
    assert first.exit_code == 0, first.output
    created_keys.add(json.loads(first.stdout)["api_key"])

    again = runner.invoke(app, [*args, "--json"])

    assert again.exit_code == 0, again.output
    body = json.loads(again.stdout)
    created_keys.add(body["api_key"])
    assert "owner_password" not in body
    assert body["user_id"] != json.loads(first.stdout)["user_id"]


@pytest.mark.parametrize(("name", "email"), [("Acme", "not-an-email"), ("  ", "a@b.io")])
def test_bad_input_is_refused_with_a_reason(sqlite_url: str, name: str, email: str) -> None:
    result = runner.invoke(
        app, ["orgs", "create", name, "--owner-email", email, "--database-url", sqlite_url]
    )
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1].startswith("error: ")


def test_migrate_is_idempotent(sqlite_url: str) -> None:
    for _ in range(2):
        result = runner.invoke(app, ["migrate", "--database-url", sqlite_url])
        assert result.exit_code == 0, result.output
        assert "up to date" in result.stdout


def test_the_database_url_may_come_from_the_environment(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'env.db'}"
    result = runner.invoke(app, ["migrate"], env={"KEYPLANE_DATABASE_URL": url})
    assert result.exit_code == 0, result.output
    assert (tmp_path / "env.db").exists()
    assert (tmp_path / "env.db.secret").stat().st_mode & 0o777 == 0o600


def test_postgresql_needs_a_shared_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KEYPLANE_SECRET_KEY", raising=False)
    monkeypatch.delenv("KEYPLANE_SECRET_KEY_FILE", raising=False)
    result = runner.invoke(app, ["migrate", "--database-url", "postgresql://nobody@127.0.0.1:1/x"])
    assert result.exit_code == 2
    assert "KEYPLANE_SECRET_KEY" in result.stderr


@pytest.mark.postgres
def test_orgs_create_on_postgresql(postgres_url: str, created_keys: CreatedKeys) -> None:
    result = runner.invoke(
        app,
        [
            "orgs",
            "create",
            "PG org",
            "--owner-email",
            "pg@acme.io",
            "--database-url",
            postgres_url,
            "--json",
        ],
        env={"KEYPLANE_SECRET_KEY": TEST_SECRET},
    )
    assert result.exit_code == 0, result.output
    key = json.loads(result.stdout)["api_key"]
    created_keys.add(key)
    assert parse_key(key) is not None


def test_the_owner_password_may_come_from_stdin(sqlite_url: str) -> None:
    result = runner.invoke(
        app,
        [
            "orgs",
            "create",
            "Acme",
            "--owner-email",
            "in@acme.io",
            "--database-url",
            sqlite_url,
            "--json",
            "--owner-password-stdin",
        ],
        input="correct horse battery staple\n",
    )
    assert result.exit_code == 0, result.output
    assert "owner_password" not in json.loads(result.stdout)


def test_a_short_password_on_stdin_is_refused_before_anything_is_created(sqlite_url: str) -> None:
    args = [
        "orgs",
        "create",
        "Acme",
        "--owner-email",
        "s@acme.io",
        "--database-url",
        sqlite_url,
        "--owner-password-stdin",
    ]
    result = runner.invoke(app, args, input="short\n")
    assert result.exit_code == 1
    assert "password" in result.stderr
    retry = runner.invoke(app, args, input="long enough password\n")
    assert retry.exit_code == 0, retry.output


def test_version_prints_the_package_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"keyplane {__version__}"


def _commands(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command and group under ``command``, as argument paths."""
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_commands(sub, (*path, name)))
    return found


def test_help_shows_no_python_type_markers() -> None:
    commands = _commands(typer.main.get_command(app))
    assert ("serve",) in commands
    for path in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert re.search(r"<\w+>", result.stdout) is None, (path, result.stdout)
        assert "Usage: " in result.stdout


@pytest.mark.parametrize(
    ("env", "args", "reason"),
    [
        ({}, [], "KEYPLANE_SECRET_KEY"),
        ({"KEYPLANE_SECRET_KEY": TEST_SECRET}, ["--demo"], "--demo"),
        (
            {"KEYPLANE_SECRET_KEY": TEST_SECRET, "KEYPLANE_SECURE_COOKIES": "false"},
            [],
            "KEYPLANE_SECURE_COOKIES=false",
        ),
    ],
    ids=["no-secret", "demo", "insecure-cookies"],
)
def test_production_refuses_to_start_unsafe_and_says_why(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    args: list[str],
    reason: str,
) -> None:
    for name in ("KEYPLANE_SECRET_KEY", "KEYPLANE_SECRET_KEY_FILE", "KEYPLANE_SECURE_COOKIES"):
        monkeypatch.delenv(name, raising=False)
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    result = runner.invoke(
        app,
        ["serve", "--port", "1", "--database-url", url, *args],
        env={"KEYPLANE_ENV": "production", **env},
    )
    assert result.exit_code == 2
    assert "KEYPLANE_ENV=production refuses to start" in result.stderr
    assert reason in result.stderr
    assert not (tmp_path / "prod.db").exists()


def test_a_trusted_proxy_that_is_no_address_is_refused_at_start(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'p.db'}"
    result = runner.invoke(
        app,
        ["serve", "--port", "1", "--database-url", url],
        env={"KEYPLANE_TRUSTED_PROXIES": "10.0.0.0/8, gateway"},
    )
    assert result.exit_code == 2
    assert "KEYPLANE_TRUSTED_PROXIES" in result.stderr
    assert "'gateway'" in result.stderr


def test_an_unreachable_database_is_one_line_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KEYPLANE_SECRET_KEY", TEST_SECRET)
    # Port 1 on loopback: nothing listens there, so the connection is refused at once.
    result = runner.invoke(
        app, ["migrate", "--database-url", "postgresql://postgres@127.0.0.1:1/x"]
    )
    assert result.exit_code == 1
    assert result.output.startswith("error: cannot use the database: ")
    assert "Traceback" not in result.output


def test_a_database_failing_writes_makes_orgs_create_say_so_and_change_nothing(
    sqlite_url: str,
) -> None:
    assert runner.invoke(app, ["migrate", "--database-url", sqlite_url]).exit_code == 0
    path = sqlite_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TRIGGER refuse_audit BEFORE INSERT ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit refused'); END"
        )
    result = runner.invoke(
        app, ["orgs", "create", "Acme", "--owner-email", "a@acme.io", "--database-url", sqlite_url]
    )
    assert result.exit_code == 1
    assert "nothing was changed" in result.output
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT count(*) FROM organizations").fetchone() == (0,)
