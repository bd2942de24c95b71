"""Liveness, the OpenAPI document and the interactive docs."""

from __future__ import annotations

import re
from typing import Any, Literal

import httpx
import pytest

from keyplane.app import create_app
from keyplane.settings import Settings

from conftest import TEST_SECRET, Org, Server
from support import problem

OPERATIONS = {
    ("/v1/keys", "post"),
    ("/v1/keys", "get"),
    ("/v1/keys/{key_id}", "get"),
    ("/v1/keys/{key_id}", "patch"),
    ("/v1/keys/{key_id}", "delete"),
    ("/v1/keys/verify", "post"),
    ("/v1/apps", "post"),
    ("/v1/apps", "get"),
    ("/v1/apps/{app_id}", "get"),
    ("/v1/apps/{app_id}", "patch"),
    ("/v1/apps/{app_id}", "delete"),
    ("/v1/profiles", "post"),
    ("/v1/profiles", "get"),
    ("/v1/profiles/{profile_id}", "get"),
    ("/v1/profiles/{profile_id}", "patch"),
    ("/v1/profiles/{profile_id}", "delete"),
    ("/v1/resources", "post"),
    ("/v1/resources", "get"),
    ("/v1/resources/{name}", "get"),
    ("/v1/resources/{name}", "patch"),
    ("/v1/resources/{name}", "delete"),
    ("/v1/org", "get"),
    ("/v1/org", "patch"),
    ("/v1/users", "post"),
    ("/v1/users", "get"),
    ("/v1/users/{user_id}", "get"),
    ("/v1/users/{user_id}", "patch"),
    ("/v1/users/{user_id}", "delete"),
}


def test_healthz_answers_200(server: Server) -> None:
    response = httpx.get(f"{server.base_url}/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_openapi_documents_every_operation_with_its_errors(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    documented = {(path, method) for path, item in spec["paths"].items() for method in item}
    assert documented >= OPERATIONS
    for path, method in OPERATIONS:
        operation = spec["paths"][path][method]
        responses = operation["responses"]
        assert {"401", "403"} <= set(responses), (path, method)
        assert "application/problem+json" in responses["401"]["content"], (path, method)
        if method in ("post", "patch"):
            assert "requestBody" in operation, (path, method)
            assert "422" in responses, (path, method)


def test_openapi_describes_the_verify_request_and_verdict(server: Server) -> None:
    spec = httpx.get(f"{server.base_url}/openapi.json").json()
    operation = spec["paths"]["/v1/keys/verify"]["post"]
    schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert set(schema["properties"]) == {"key", "scopes", "ip", "cost"}
    assert "200" in operation["responses"]


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_are_served(server: Server, path: str) -> None:
    assert httpx.get(f"{server.base_url}{path}").status_code == 200


# OAuth protocol endpoints answer RFC 6749 errors, not problem documents, to a form body:
# what OAuth clients expect (tests/api/test_oauth_tokens.py holds them to it).
OAUTH_PATHS = frozenset(("/oauth/token",))


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path not in OAUTH_PATHS
    ]


def test_the_oauth_token_endpoint_documents_its_rfc6749_errors(spec: dict[str, Any]) -> None:
    responses = spec["paths"]["/oauth/token"]["post"]["responses"]
    assert {"200", "400", "401", "413", "429"} <= set(responses)
    for status in ("400", "401", "429"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert "invalid_client" in schema["properties"]["error"]["enum"]


@pytest.fixture(scope="module")
def spec(sqlite_server: Server) -> dict[str, Any]:
    document: dict[str, Any] = httpx.get(f"{sqlite_server.base_url}/openapi.json").json()
    return document


def test_every_operation_with_a_body_documents_what_a_body_can_answer(
    spec: dict[str, Any],
) -> None:
    with_body = [(p, m, op) for p, m, op in _operations(spec) if "requestBody" in op]
    assert len(with_body) >= 12  # the issue counted 12
    for path, method, operation in with_body:
        assert {"400", "413", "415", "422"} <= set(operation["responses"]), (path, method)


def test_every_documented_problem_is_a_problem_document(spec: dict[str, Any]) -> None:
    for path, method, operation in _operations(spec):
        for status, response in operation["responses"].items():
            if status.startswith("4"):
                schema = response["content"]["application/problem+json"]["schema"]
                expected = "ValidationProblem" if status == "422" else "Problem"
                assert schema == {"$ref": f"#/components/schemas/{expected}"}, (path, method)
                assert set(response["content"]) == {"application/problem+json"}


def test_every_operation_on_an_object_documents_404(spec: dict[str, Any]) -> None:
    for path, method, operation in _operations(spec):
        if "{" in path:
            assert "404" in operation["responses"], (path, method)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "key_01hzzzzzzzzzzzzzzzzzzzzzzz", path)


def test_every_operation_with_a_body_answers_415_to_a_body_that_is_not_json(
    spec: dict[str, Any], org: Org
) -> None:
    for path, method, operation in _operations(spec):
        if "requestBody" not in operation:
            continue
        response = org.api.http.request(
            method.upper(),
            _concrete(path),
            content=b"name=x",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        problem(response, 415)


@pytest.mark.parametrize(
    ("path", "method", "allowed"),
    [
        ("/v1/keys", "PUT", "GET, POST"),
        ("/v1/keys/key_01hzzzzzzzzzzzzzzzzzzzzzzz", "POST", "DELETE, GET, PATCH"),
        ("/v1/org", "DELETE", "GET, PATCH"),
        ("/healthz", "POST", "GET"),
        ("/v1/keys/verify", "OPTIONS", "POST"),  # not also a key id
    ],
)
def test_a_405_lists_every_method_of_the_path_in_Allow(
    sqlite_server: Server, path: str, method: str, allowed: str
) -> None:
    response = httpx.request(method, f"{sqlite_server.base_url}{path}")
    problem(response, 405)
    assert response.headers["allow"] == allowed


@pytest.mark.parametrize(
    "accept",
    [
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # a browser
        "text/html",
    ],
)
def test_a_browser_at_the_base_url_is_sent_to_the_console(
    sqlite_server: Server, accept: str
) -> None:
    response = httpx.get(f"{sqlite_server.base_url}/", headers={"Accept": accept})
    assert response.status_code == 303
    assert response.headers["location"] == "/console"


@pytest.mark.parametrize("accept", [None, "*/*", "application/json"])
def test_an_api_client_at_the_base_url_gets_an_index_of_links(
    sqlite_server: Server, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    response = httpx.get(f"{sqlite_server.base_url}/", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "/docs"
    assert body["openapi"] == "/openapi.json"
    assert body["api"] == "/v1"
    assert body["console"] == "/console"
    for link in ("docs", "openapi", "console"):
        followed = httpx.get(f"{sqlite_server.base_url}{body[link]}", follow_redirects=True)
        assert followed.status_code == 200


@pytest.mark.parametrize(
    ("env", "docs", "served"),
    [
        ("development", None, True),
        ("development", False, False),
        ("production", None, False),
        ("production", True, True),
    ],
)
def test_interactive_docs_are_off_in_production_unless_asked_for(
    env: Literal["development", "production"], docs: bool | None, served: bool
) -> None:
    settings = Settings(database_url="sqlite://", secret_key=TEST_SECRET, env=env, docs=docs)
    app = create_app(settings)
    try:
        paths = {getattr(route, "path", None) for route in app.routes}
        assert ("/docs" in paths) is served
        assert ("/redoc" in paths) is served
        assert "/openapi.json" in paths
        assert app.openapi()["paths"]
    finally:
        app.state.keyplane.close()
