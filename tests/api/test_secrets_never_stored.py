"""After every other test: no key that was ever created is in the database or the logs.

Keys are stored only as keyed digests and never logged. This searches the raw SQLite
files (database and write-ahead log), every row of every PostgreSQL table as text, and
every log record of the session, for each full key and for its random part alone.
"""

from __future__ import annotations

import psycopg
import pytest

from conftest import CreatedKeys, LogCapture, Server

pytestmark = pytest.mark.runs_last


def _needles(keys: set[str]) -> list[str]:
    # The full key and its 32 random characters (which no mask or log line may contain).
    return sorted(keys | {key[8:40] for key in keys})


def test_no_key_is_in_the_sqlite_files(sqlite_server: Server, created_keys: CreatedKeys) -> None:
    assert len(created_keys.keys) > 50, "the search must follow a real run of the API tests"
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
    leaked = [n for n in _needles(created_keys.keys) if n.encode() in contents]
    assert leaked == []


@pytest.mark.postgres
def test_no_key_is_in_any_postgresql_row(
    postgres_server: Server, postgres_url: str, created_keys: CreatedKeys
) -> None:
    postgres_server.kp.usage.flush()
    with psycopg.connect(postgres_url) as conn:
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            ).fetchall()
        ]
        assert "api_keys" in tables
        dump = "\n".join(
            str(row[0])
            for table in tables
            for row in conn.execute(f'SELECT t::text FROM "{table}" t').fetchall()  # noqa: S608
        )
    assert "kp_live_…" in dump  # the masked keys are there: the dump is real
    leaked = [n for n in _needles(created_keys.keys) if n in dump]
    assert leaked == []


def test_no_key_is_in_the_logs(log_capture: LogCapture, created_keys: CreatedKeys) -> None:
    text = "\n".join(log_capture.lines)
    assert len(log_capture.lines) > 0
    leaked = [n for n in _needles(created_keys.keys) if n in text]
    assert leaked == []
