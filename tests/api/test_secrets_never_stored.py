"""After every other test: no secret any test saw is in the databases, the audit log or the
logs.

The secrets are those the session registry (``conftest.CreatedKeys``) collected: every full
key the test servers issued, by any path, and its 32 random characters alone; every password
a test set or typed (API bodies, console forms, the browser); every console session token,
every set-password token and every webhook signing secret (``whsec_…``) shown. Keys are
stored only as keyed digests, passwords as argon2
hashes, tokens as digests, and none is ever logged. This searches the raw SQLite files
(database and write-ahead log), every row of every PostgreSQL table as text, the audit rows
of both, and every log record of the session.

Each search first signs in to the console of its server over HTTP, so that it never passes
for want of a password or a session to look for.
"""

from __future__ import annotations

import re
import secrets
from http.cookies import SimpleCookie

import httpx
import psycopg
import pytest
from sqlalchemy import text

from conftest import CreatedKeys, LogCapture, Org, Server

pytestmark = pytest.mark.runs_last

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _needles(seen: CreatedKeys) -> dict[str, str]:
    """Each secret, and what it is (the report names the kind and a prefix, not the secret)."""
    needles = dict.fromkeys(seen.keys, "key")
    needles |= {key[8:40]: "random part of a key" for key in seen.keys}
    needles |= dict.fromkeys(seen.passwords, "password")
    needles |= dict.fromkeys(seen.tokens, "token")
    needles |= dict.fromkeys(seen.webhook_secrets, "webhook secret")
    needles |= {s.removeprefix("whsec_"): "webhook secret's base64" for s in seen.webhook_secrets}
    return needles


def _found(seen: CreatedKeys, haystack: str | bytes) -> list[str]:
    return sorted(
        f"{kind} {needle[:6]}…"
        for needle, kind in _needles(seen).items()
        if (needle.encode() if isinstance(haystack, bytes) else needle) in haystack
    )


def _sign_in(server: Server, seen: CreatedKeys) -> tuple[str, str]:
    """A user with a password, signed in to the console over HTTP: (password, session)."""
    org = Org(server, seen)
    email = f"leak-search-{secrets.token_hex(4)}@example.com"
    password = f"leak search {secrets.token_hex(8)}"
    made = org.api.post("/v1/users", json={"email": email, "role": "viewer", "password": password})
    assert made.status_code == 201, made.text
    # Its own address: the sign-in limiter counts failures per address for the whole session.
    transport = httpx.HTTPTransport(local_address=f"127.84.{secrets.randbelow(250)}.1")
    with httpx.Client(base_url=server.base_url, transport=transport, timeout=15) as http:
        match = CSRF.search(http.get("/console/login").text)
        assert match is not None
        token = match.group(1)
        response = http.post(
            "/console/login",
            data={"csrf_token": token, "email": email, "password": password},
            headers={"Cookie": f"kp_login_csrf={token}"},
        )
    assert response.status_code == 303, response.text
    cookies: SimpleCookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        cookies.load(header)
    session = cookies["kp_session"].value
    seen.add_token(session)
    seen.close_clients()
    assert password in seen.passwords  # the API client noted it on the way out
    return password, session


@pytest.fixture(scope="module")
def sqlite_session(sqlite_server: Server, created_keys: CreatedKeys) -> tuple[str, str]:
    return _sign_in(sqlite_server, created_keys)


@pytest.fixture(scope="module")
def postgres_session(postgres_server: Server, created_keys: CreatedKeys) -> tuple[str, str]:
    return _sign_in(postgres_server, created_keys)


def test_no_secret_is_in_the_sqlite_files(
    sqlite_server: Server, created_keys: CreatedKeys, sqlite_session: tuple[str, str]
) -> None:
    assert len(created_keys.keys) > 50, "the search must follow a real run of the API tests"
    assert created_keys.webhook_secrets, "and of the webhook tests, whose secrets it seeks too"
    assert set(sqlite_session) <= created_keys.passwords | created_keys.tokens
    sqlite_server.kp.usage.flush()
    assert sqlite_server.sqlite_file is not None
    files = [
        path
        for path in sqlite_server.sqlite_file.parent.iterdir()
        if path.name.startswith(sqlite_server.sqlite_file.name)
    ]
    assert any(path.suffix == ".db" for path in files)
    contents = b"".join(path.read_bytes() for path in files)
    assert len(contents) > 10_000
    assert _found(created_keys, contents) == []


@pytest.mark.postgres
def test_no_secret_is_in_any_postgresql_row(
    postgres_server: Server,
    postgres_url: str,
    created_keys: CreatedKeys,
    postgres_session: tuple[str, str],
) -> None:
    postgres_server.kp.usage.flush()
    with psycopg.connect(postgres_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        assert {"api_keys", "console_sessions", "identities", "memberships"} <= set(tables)
        dump = "\n".join(
            str(row[0])
            for table in tables
            for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()  # noqa: S608
        )
    assert "kp_live_…" in dump  # the masked keys are there: the dump is real
    assert _found(created_keys, dump) == []


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_no_secret_is_in_the_audit_rows(
    request: pytest.FixtureRequest, created_keys: CreatedKeys, backend: str
) -> None:
    request.getfixturevalue(f"{'postgres' if backend == 'postgresql' else 'sqlite'}_session")
    server: Server = request.getfixturevalue(
        "postgres_server" if backend == "postgresql" else "sqlite_server"
    )
    with server.kp.store.engine.connect() as conn:
        rows = [str(tuple(row)) for row in conn.execute(text("SELECT * FROM audit_events"))]
    assert len(rows) > 50
    assert any("user.create" in row for row in rows)
    assert _found(created_keys, "\n".join(rows)) == []


def test_no_secret_is_in_the_logs(
    log_capture: LogCapture, created_keys: CreatedKeys, sqlite_session: tuple[str, str]
) -> None:
    assert len(log_capture.lines) > 0
    assert _found(created_keys, "\n".join(log_capture.lines)) == []
