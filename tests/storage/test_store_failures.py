"""How the store reports what the database refuses: a race between two writers is a
Conflict, a database that refuses writes is StorageUnavailable (the API's 503), and neither
is mistaken for the other or for a bug."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg
import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.errors import Conflict, StorageUnavailable
from keyplane.domain.models import App
from keyplane.services.apps import AppService
from keyplane.settings import Settings
from keyplane.storage.engine import normalise_url, sqlite_path

from conftest import POSTGRES_ADMIN_URL, TEST_SECRET, Api, Clock, CreatedKeys, Server
from support.databases import fresh_postgres

PASSWORD = "correct horse battery staple"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def kp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Keyplane]:
    if request.param == "sqlite":
        built = build(
            Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", secret_key=TEST_SECRET)
        )
        yield built
        built.close()
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_failures") as url:
        built = build(Settings(database_url=url, secret_key=TEST_SECRET))
        yield built
        built.close()


def test_two_writers_inserting_the_same_row_is_a_conflict(kp: Keyplane) -> None:
    org = kp.orgs.create("Race", "race@example.com").org
    now = datetime.now(UTC)
    app = App("app_raced", org.id, "raced", "", (), "usr_x", now, now)
    with kp.store.transaction() as tx:
        tx.apps.insert(app)
    # The services check first; the database's own refusal is what a lost race looks like.
    with pytest.raises(Conflict), kp.store.transaction() as tx:
        tx.apps.insert(app)


@pytest.mark.postgres
def test_a_database_refusing_writes_is_unavailable_and_reads_go_on(
    postgres_url: str,
) -> None:
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_standby") as url:
        kp = build(Settings(database_url=url, secret_key=TEST_SECRET))
        made = kp.orgs.create("Standby", "standby@example.com")
        owner = kp.verifier.authenticate(made.api_key)
        name = url.rsplit("/", 1)[1]
        admin = normalise_url(POSTGRES_ADMIN_URL).replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(admin, autocommit=True) as conn:
            # What a hot standby (or a read-only switch during maintenance) looks like.
            conn.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
        apps = AppService(kp.store, kp.clock)
        try:
            kp.store.engine.dispose()  # type: ignore[attr-defined]  # new sessions see it
            with pytest.raises(StorageUnavailable) as refused:
                apps.create(owner, "refused")
            assert refused.value.retry_after >= 1
            assert kp.orgs.get(owner).name == "Standby"
            assert apps.page(owner, limit=10).items == []
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')
            kp.store.engine.dispose()  # type: ignore[attr-defined]
        assert apps.create(owner, "accepted").name == "accepted"
        kp.close()


def _run_sql(database_url: str, statement: str) -> None:
    path = sqlite_path(database_url)
    if path is not None:
        with sqlite3.connect(path) as conn:
            conn.execute(statement)
        return
    url = normalise_url(database_url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(statement)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    def serve(url: str) -> Iterator[Server]:
        settings = Settings(database_url=url, secret_key=TEST_SECRET)
        running = Server(build(settings), Clock(), url, sqlite_path(url))
        running.start()
        yield running
        running.stop()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path / 'k.db'}")
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_reads_fail") as url:
        yield from serve(url)


def test_a_database_failing_reads_answers_503_on_the_api_the_hot_path_and_the_console(
    server: Server, created_keys: CreatedKeys
) -> None:
    made = server.kp.orgs.create("Reads fail", "reads-fail@example.com")
    server.kp.users.set_password(made.owner.id, PASSWORD)
    session = server.kp.signin.sign_in("reads-fail@example.com", PASSWORD, "127.0.0.1").token
    api = Api(server, made.api_key, created_keys)
    target = str(api.create_key(name="never verified yet")["key"])  # not in the cache
    assert api.get("/v1/org").status_code == 200  # the caller's own key is now cached

    _run_sql(server.database_url, "ALTER TABLE api_keys RENAME TO api_keys_away")
    try:
        answers = {
            "list keys": api.get("/v1/keys"),
            "cold verification": api.post("/v1/keys/verify", json={"key": target}),
        }
        for name, response in answers.items():
            assert response.status_code == 503, (name, response.text)
            assert response.headers["content-type"] == "application/problem+json", name
            assert response.json()["type"] == "urn:keyplane:problem:unavailable", name
            assert "retry-after" in response.headers, name
        page = httpx.get(
            f"{server.base_url}/console/keys", headers={"Cookie": f"kp_session={session}"}
        )
        assert page.status_code == 503
        assert "The database is unavailable" in page.text
    finally:
        _run_sql(server.database_url, "ALTER TABLE api_keys_away RENAME TO api_keys")

    assert api.verify(target)["code"] == "VALID"  # recovered, same process
    created_keys.close_clients()
