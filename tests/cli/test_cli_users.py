"""``keyplane users reset-password``: a new password, every session ended, an audit event."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from keyplane.app import build
from keyplane.cli.main import app
from keyplane.container import Keyplane
from keyplane.domain.errors import InvalidCredentials
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import Principal
from keyplane.services.users import NewUser
from keyplane.settings import Settings
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import audit_events

from conftest import CreatedKeys

runner = CliRunner()
PASSWORD = "correct horse battery staple"
EMAIL = "ada@acme.io"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cli.db'}"


@pytest.fixture
def org(sqlite_url: str, created_keys: CreatedKeys) -> dict[str, Any]:
    """An organization whose owner (EMAIL) signs in with PASSWORD."""
    result = runner.invoke(
        app,
        [
            *("orgs", "create", "Acme", "--owner-email", EMAIL),
            *("--database-url", sqlite_url, "--json", "--owner-password-stdin"),
        ],
        input=PASSWORD + "\n",
    )
    assert result.exit_code == 0, result.output
    body: dict[str, Any] = json.loads(result.stdout)
    created_keys.add(body["api_key"])
    return body


@pytest.fixture
def kp(sqlite_url: str, org: dict[str, Any]) -> Iterator[Keyplane]:
    """The services over the same database, to sign in and read what the command did."""
    made = build(Settings(database_url=sqlite_url))
    yield made
    made.close()


def reset(sqlite_url: str, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(
        app,
        ["users", "reset-password", *args, "--database-url", sqlite_url],
        input=stdin,
    )


def audit(kp: Keyplane, action: str) -> list[Any]:
    store = kp.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        return list(conn.execute(select(audit_events).where(audit_events.c.action == action)))


def test_a_reset_prints_a_new_password_once_and_ends_every_session(
    sqlite_url: str, kp: Keyplane
) -> None:
    session = kp.signin.sign_in(EMAIL, PASSWORD, "127.0.0.1")

    result = reset(sqlite_url, "ADA@acme.io")

    assert result.exit_code == 0, result.output
    assert "sessions have ended" in result.stdout
    [line] = [x for x in result.stdout.splitlines() if x.startswith("password")]
    new_password = line.split()[1]
    assert len(new_password) >= 12
    assert kp.signin.resume(session.token) is None
    with pytest.raises(InvalidCredentials):
        kp.signin.sign_in(EMAIL, PASSWORD, "127.0.0.2")
    assert kp.signin.sign_in(EMAIL, new_password, "127.0.0.3").user is not None
    [event] = [e for e in audit(kp, "user.password_set") if e.details["via"] == "operator"][-1:]
    assert event.actor == "operator"
    assert new_password not in str(event.details)


def test_a_password_from_stdin_is_used_and_never_printed(sqlite_url: str, kp: Keyplane) -> None:
    chosen = "a brand new passphrase"

    result = reset(sqlite_url, EMAIL, "--password-stdin", stdin=chosen + "\n")

    assert result.exit_code == 0, result.output
    assert chosen not in result.output
    assert kp.signin.sign_in(EMAIL, chosen, "127.0.0.4").user is not None


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["nobody@acme.io"], None, "No user with the email"),
        (["not-an-email"], None, "not an email address"),
        ([EMAIL, "--password-stdin"], "short\n", "at least 12 characters"),
        ([EMAIL, "--org", "org_01aaaaaaaaaaaaaaaaaaaaaaaa"], None, "No member of"),
    ],
)
def test_a_reset_that_cannot_be_done_says_why_and_changes_nothing(
    sqlite_url: str, kp: Keyplane, args: list[str], stdin: str | None, message: str
) -> None:
    result = reset(sqlite_url, *args, stdin=stdin)

    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert kp.signin.sign_in(EMAIL, PASSWORD, "127.0.0.5").user is not None


def test_a_reset_for_an_organization_accepts_that_membership(
    sqlite_url: str, kp: Keyplane, org: dict[str, Any]
) -> None:
    owner = Principal(org["org_id"], org["user_id"], ScopeSet.full())
    invited = kp.users.create(owner, NewUser(email="grace@acme.io"))
    assert invited.user.pending

    result = reset(sqlite_url, "grace@acme.io", "--org", org["org_id"])

    assert result.exit_code == 0, result.output
    assert kp.users.get(owner, invited.user.id).can_sign_in
