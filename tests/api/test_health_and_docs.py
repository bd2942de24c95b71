"""Liveness, the OpenAPI document and the interactive docs."""

from __future__ import annotations

import httpx
import pytest

from conftest import Server

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
    assert set(schema["properties"]) == {"key", "scopes", "ip"}
    assert "200" in operation["responses"]


@pytest.mark.parametrize("path", ["/docs", "/openapi.json"])
def test_docs_are_served(server: Server, path: str) -> None:
    assert httpx.get(f"{server.base_url}{path}").status_code == 200
