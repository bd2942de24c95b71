"""Every response carrying a secret (a full key, a set-password link) forbids caching."""

from __future__ import annotations

import secrets

import httpx
import pytest

from conftest import Org


def _forbids_caching(response: httpx.Response) -> bool:
    return (
        response.headers.get("cache-control") == "no-store"
        and response.headers.get("pragma") == "no-cache"
    )


def test_a_created_key_is_never_cached(org: Org) -> None:
    response = org.api.post("/v1/keys", json={"name": "cached?", "scopes": ["apps:read"]})
    assert response.status_code == 201
    assert response.json()["key"]
    assert _forbids_caching(response)


def test_a_set_password_link_is_never_cached(org: Org) -> None:
    email = f"invited-{secrets.token_hex(4)}@example.com"
    response = org.api.post("/v1/users", json={"email": email, "role": "viewer"})
    assert response.status_code == 201
    assert response.json()["set_password_url"]
    assert _forbids_caching(response)


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/users", "/v1/org"])
def test_responses_without_a_secret_keep_default_caching(org: Org, path: str) -> None:
    response = org.api.get(path)
    assert response.status_code == 200
    assert "cache-control" not in response.headers


def test_a_user_created_with_a_password_carries_no_secret_and_no_cache_rule(org: Org) -> None:
    email = f"with-password-{secrets.token_hex(4)}@example.com"
    response = org.api.post(
        "/v1/users",
        json={"email": email, "role": "viewer", "password": "correct horse battery staple"},
    )
    assert response.status_code == 201
    assert response.json()["set_password_url"] is None
    assert "cache-control" not in response.headers
