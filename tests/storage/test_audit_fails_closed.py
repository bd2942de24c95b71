"""Audit fails closed: when the audit event cannot be written, the change it describes is not
made either. A real trigger on audit_events makes every insert fail (SQLite RAISE(ABORT),
PostgreSQL a plpgsql function); every mutation then answers a 503 problem document with
Retry-After, nothing in the database changes, and once the trigger is dropped the same
server (no restart) accepts every mutation again."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import select

from keyplane.app import build
from keyplane.settings import Settings
from keyplane.storage.engine import make_engine, normalise_url, sqlite_path
from keyplane.storage.tables import metadata

from conftest import TEST_SECRET, Api, Clock, CreatedKeys, Server

PASSWORD = "correct horse battery staple"

SQLITE_FAULT = (
    "CREATE TRIGGER audit_fault BEFORE INSERT ON audit_events "
    "BEGIN SELECT RAISE(ABORT, 'audit store fault injected by the test'); END"
)
POSTGRES_FAULT = (
    "CREATE FUNCTION audit_fault() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "RAISE EXCEPTION 'audit store fault injected by the test'; END $$; "
    "CREATE TRIGGER audit_fault BEFORE INSERT ON audit_events "
    "FOR EACH ROW EXECUTE FUNCTION audit_fault()"
)


@pytest.fixture
def server(database_url: str) -> Iterator[Server]:
    settings = Settings(database_url=database_url, secret_key=TEST_SECRET)
    running = Server(build(settings), Clock(), database_url, sqlite_path(database_url))
    running.start()
    yield running
    running.stop()


def _psycopg_url(database_url: str) -> str:
    return normalise_url(database_url).replace("postgresql+psycopg://", "postgresql://")


def inject_fault(database_url: str) -> None:
    path = sqlite_path(database_url)
    if path is not None:
        with sqlite3.connect(path) as conn:
            conn.execute(SQLITE_FAULT)
        return
    with psycopg.connect(_psycopg_url(database_url), autocommit=True) as conn:
        conn.execute(POSTGRES_FAULT)


def remove_fault(database_url: str) -> None:
    path = sqlite_path(database_url)
    if path is not None:
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER audit_fault")
        return
    with psycopg.connect(_psycopg_url(database_url), autocommit=True) as conn:
        conn.execute("DROP TRIGGER audit_fault ON audit_events; DROP FUNCTION audit_fault()")


def snapshot(database_url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table; last_used_at and usage counts are left out (buffered usage,
    not a mutation)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            tables = {}
            for table in metadata.sorted_tables:
                if table.name == "usage_counts":  # counts of the calls themselves, buffered
                    continue
                order = list(table.primary_key.columns)
                rows = conn.execute(select(table).order_by(*order)).mappings()
                tables[table.name] = [
                    {k: v for k, v in row.items() if k != "last_used_at"} for row in rows
                ]
            return tables
    finally:
        engine.dispose()


@dataclass
class Fixtures:
    api: Api
    key_id: str
    app_id: str
    profile_id: str
    member_id: str
    session: str
    csrf: str


@pytest.fixture
def world(server: Server, created_keys: CreatedKeys) -> Iterator[Fixtures]:
    made = server.kp.orgs.create("Fault org", "owner@fault.example")
    api = Api(server, made.api_key, created_keys)
    server.kp.users.set_password(made.owner.id, PASSWORD)
    signed_in = server.kp.signin.sign_in("owner@fault.example", PASSWORD, "127.0.0.1")

    def created(path: str, body: dict[str, Any]) -> str:
        response = api.post(path, json=body)
        assert response.status_code == 201, response.text
        ident: str = response.json()["id"] if "id" in response.json() else body["name"]
        return ident

    yield Fixtures(
        api=api,
        key_id=created("/v1/keys", {"name": "standing key"}),
        app_id=created("/v1/apps", {"name": "standing app"}),
        profile_id=created("/v1/profiles", {"name": "standing profile"}),
        member_id=created("/v1/users", {"email": "member@fault.example", "role": "viewer"}),
        session=signed_in.token,
        csrf=signed_in.csrf_token,
    )
    created_keys.close_clients()


def mutations(w: Fixtures, suffix: str) -> list[tuple[str, str, str, dict[str, Any] | None]]:
    """(name, method, path, body) for every mutating API operation, creations first; the
    resource ``res_<suffix>`` must exist beforehand."""
    return [
        ("create a key", "POST", "/v1/keys", {"name": f"key {suffix}"}),
        ("create an app", "POST", "/v1/apps", {"name": f"app {suffix}"}),
        ("create a profile", "POST", "/v1/profiles", {"name": f"profile {suffix}"}),
        ("create a resource", "POST", "/v1/resources", {"name": f"new_{suffix}"}),
        ("create a user", "POST", "/v1/users", {"email": f"u-{suffix}@fault.example"}),
        ("update a key", "PATCH", f"/v1/keys/{w.key_id}", {"description": suffix}),
        ("update an app", "PATCH", f"/v1/apps/{w.app_id}", {"description": suffix}),
        ("update a profile", "PATCH", f"/v1/profiles/{w.profile_id}", {"description": suffix}),
        ("update a resource", "PATCH", f"/v1/resources/res_{suffix}", {"title": suffix}),
        ("update a user", "PATCH", f"/v1/users/{w.member_id}", {"name": suffix}),
        ("update the org", "PATCH", "/v1/org", {"name": f"Fault org {suffix}"}),
        ("delete a key", "DELETE", f"/v1/keys/{w.key_id}", None),
        ("delete an app", "DELETE", f"/v1/apps/{w.app_id}", None),
        ("delete a profile", "DELETE", f"/v1/profiles/{w.profile_id}", None),
        ("delete a resource", "DELETE", f"/v1/resources/res_{suffix}", None),
        ("delete a user", "DELETE", f"/v1/users/{w.member_id}", None),
    ]


def test_every_mutation_answers_503_changes_nothing_and_recovers_without_restart(
    server: Server, world: Fixtures, database_url: str
) -> None:
    # The resource the fault-time update and delete aim at exists before the fault.
    assert world.api.post("/v1/resources", json={"name": "res_faulty"}).status_code == 201
    before = snapshot(database_url)
    inject_fault(database_url)
    try:
        for name, method, path, body in mutations(world, "faulty"):
            response = world.api.http.request(method, path, json=body)
            assert response.status_code == 503, (name, response.status_code, response.text)
            assert response.headers["content-type"] == "application/problem+json", name
            assert int(response.headers["retry-after"]) >= 1, name
            problem = response.json()
            assert problem["type"] == "urn:keyplane:problem:unavailable", name
            assert problem["status"] == 503, name
            assert "nothing was changed" in problem["detail"], name

        assert world.api.get("/v1/keys").status_code == 200  # reads go on
        page = world.api.http.post(
            f"/console/apps/{world.app_id}/rename",
            data={"csrf_token": world.csrf, "name": "renamed", "description": ""},
            headers={"Cookie": f"kp_session={world.session}", "Authorization": ""},
        )
        assert page.status_code == 503
        assert page.headers["content-type"].startswith("text/html")
        assert "The database is unavailable" in page.text
        assert snapshot(database_url) == before
    finally:
        remove_fault(database_url)

    assert world.api.post("/v1/resources", json={"name": "res_recovered"}).status_code == 201
    for name, method, path, body in mutations(world, "recovered"):
        response = world.api.http.request(method, path, json=body)
        assert response.status_code in (200, 201, 204), (name, response.text)
    assert snapshot(database_url) != before


def test_the_openapi_document_lists_503_for_every_mutating_operation(server: Server) -> None:
    import httpx

    document = httpx.get(f"{server.base_url}/openapi.json").json()
    mutating = [
        (path, method, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in ("post", "patch", "put", "delete")
    ]
    assert len(mutating) >= 16
    for path, method, operation in mutating:
        assert "503" in operation["responses"], (method, path)
        content = operation["responses"]["503"]["content"]
        assert "application/problem+json" in content, (method, path)
