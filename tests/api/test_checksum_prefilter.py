"""The checksum turns typos away before the database: every one-character substitution of
real keys answers NOT_FOUND, and not one SQL statement reaches the engine for any of them.

Statements are counted by a SQLAlchemy ``before_cursor_execute`` hook on the server's real
engine (SQLite and PostgreSQL), in-process through the verifier and over HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from keyplane.domain.tokens import BASE62, mint_key

from conftest import Org, Server

ALPHABET = BASE62 + "_"


def substitutions(key: str) -> Iterator[str]:
    """Every key that differs from ``key`` in exactly one character (46 x 62 of them)."""
    for index, original in enumerate(key):
        for char in ALPHABET:
            if char != original:
                yield key[:index] + char + key[index + 1 :]


@contextmanager
def statements(server: Server, counted: Callable[[], bool]) -> Iterator[list[str]]:
    """The SQL statements the server's engine runs meanwhile (where ``counted()`` holds)."""
    seen: list[str] = []

    def hook(*args: Any) -> None:
        if counted():
            seen.append(args[2])  # (conn, cursor, statement, parameters, context, many)

    event.listen(server.kp.store.engine, "before_cursor_execute", hook)
    try:
        yield seen
    finally:
        event.remove(server.kp.store.engine, "before_cursor_execute", hook)


def test_ten_thousand_typos_are_NOT_FOUND_without_a_database_statement(
    org: Org, server: Server
) -> None:
    keys = [str(org.api.create_key(name=f"real {n}")["key"]) for n in range(4)]
    typos = [typo for key in keys for typo in substitutions(key)]
    assert len(typos) >= 10_000
    this_thread = threading.get_ident()

    with statements(server, lambda: threading.get_ident() == this_thread) as seen:
        codes = {server.kp.verifier.verify(org.id, typo).code for typo in typos}
    assert codes == {"NOT_FOUND"}
    assert seen == []

    # The hook does see what the verifier asks: a well-formed key of nobody is looked up.
    with statements(server, lambda: threading.get_ident() == this_thread) as seen:
        assert server.kp.verifier.verify(org.id, mint_key()).code == "NOT_FOUND"
    assert len(seen) >= 1


def test_typos_sent_over_http_are_NOT_FOUND_without_a_database_statement(
    org: Org, server: Server
) -> None:
    key = str(org.api.create_key(name="real")["key"])
    caller = org.key_with("keys:verify")
    assert caller.verify(key)["code"] == "VALID"  # the caller and the key are warm now
    typos = list(substitutions(key))[::7]

    # Last-used times and usage counts are written by their own threads: not counted.
    with statements(
        server, lambda: not threading.current_thread().name.startswith("keyplane-usage")
    ) as seen:
        codes = {caller.verify(typo)["code"] for typo in typos}
    assert codes == {"NOT_FOUND"}
    assert seen == []
    with statements(
        server, lambda: not threading.current_thread().name.startswith("keyplane-usage")
    ) as seen:
        assert caller.verify(mint_key())["code"] == "NOT_FOUND"
    assert len(seen) >= 1  # the hook sees the server's threads: a cold lookup is counted
