"""POST /oauth/token (client credentials) with a real OAuth2 client library (Authlib), and
the tokens it issues accepted by keyplane's own API as their key, narrowed to their scopes."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import timedelta

import httpx
import jwt
import pytest
from authlib.integrations.httpx_client import OAuth2Client

from conftest import Org

TOKEN_PATH = "/oauth/token"


def _client(org: Org, key: dict[str, object], **kwargs: object) -> OAuth2Client:
    return OAuth2Client(
        client_id=str(key["id"]),
        client_secret=str(key["key"]),
        token_endpoint=f"{org.server.base_url}{TOKEN_PATH}",
        grant_type="client_credentials",
        timeout=10,
        **kwargs,
    )


@pytest.fixture
def key(org: Org) -> dict[str, object]:
    return org.api.create_key(name="machine", scopes=["apps:read", "api_keys:read", "keys:verify"])


@pytest.fixture
def oauth(org: Org, key: dict[str, object]) -> Iterator[OAuth2Client]:
    with _client(org, key) as client:
        yield client


def _bearer(org: Org, token: str, path: str) -> httpx.Response:
    return httpx.get(
        f"{org.server.base_url}{path}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )


def test_authlib_fetches_a_token_with_http_basic_and_it_works_on_the_api(
    org: Org, key: dict[str, object], oauth: OAuth2Client
) -> None:
    token = oauth.fetch_token()
    assert token["token_type"] == "Bearer"
    assert 0 < token["expires_in"] <= 900
    assert token["scope"] == "api_keys:read apps:read keys:verify"
    response = oauth.get(f"{org.server.base_url}/v1/keys")
    assert response.status_code == 200, response.text
    claims = jwt.decode(token["access_token"], options={"verify_signature": False})
    assert claims["sub"] == key["id"]
    assert claims["org"] == org.id
    assert {"iss", "iat", "exp", "jti", "app", "profile"} <= set(claims)
    assert claims["exp"] - claims["iat"] == token["expires_in"]
    assert jwt.get_unverified_header(token["access_token"])["kid"].startswith("sig_")


def test_authlib_authenticates_with_form_fields_too(org: Org, key: dict[str, object]) -> None:
    with _client(org, key, token_endpoint_auth_method="client_secret_post") as client:
        token = client.fetch_token(scope="apps:read")
        assert token["scope"] == "apps:read"
        assert client.get(f"{org.server.base_url}/v1/apps").status_code == 200


def test_the_answer_is_never_cached(org: Org, key: dict[str, object]) -> None:
    response = httpx.post(
        f"{org.server.base_url}{TOKEN_PATH}",
        data={"grant_type": "client_credentials"},
        auth=(str(key["id"]), str(key["key"])),
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"
    assert set(response.json()) == {"access_token", "token_type", "expires_in", "scope"}


def test_a_narrowed_token_may_do_only_its_scopes(
    org: Org, key: dict[str, object], oauth: OAuth2Client
) -> None:
    token = oauth.fetch_token(scope="apps:read")["access_token"]
    assert _bearer(org, token, "/v1/apps").status_code == 200
    refused = _bearer(org, token, "/v1/keys")
    assert refused.status_code == 403
    assert "api_keys:read" in refused.json()["detail"]


def test_a_scope_beyond_the_key_is_invalid_scope(org: Org, oauth: OAuth2Client) -> None:
    response = oauth.post(
        f"{org.server.base_url}{TOKEN_PATH}",
        data={"grant_type": "client_credentials", "scope": "apps:read apps:write"},
        auth=(oauth.client_id, oauth.client_secret),
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"


def test_verify_accepts_a_token_as_the_key_narrowed_to_its_scopes(
    org: Org, oauth: OAuth2Client
) -> None:
    gateway = org.key_with("keys:verify")
    token = oauth.fetch_token(scope="apps:read")["access_token"]
    verdict = gateway.verify(token, ["apps:read"])
    assert verdict["code"] == "VALID"
    assert verdict["key_id"] == oauth.client_id
    assert verdict["scopes"] == ["apps:read"]
    narrowed = gateway.verify(token, ["api_keys:read"])
    assert narrowed["code"] == "INSUFFICIENT_SCOPE"
    assert narrowed["missing_scopes"] == ["api_keys:read"]
    assert gateway.verify(token[:-4] + "AAAA")["code"] == "NOT_FOUND"


def test_a_token_may_call_verify_itself(org: Org, oauth: OAuth2Client) -> None:
    other = org.api.create_key(name="checked", scopes=["apps:read"])
    token = oauth.fetch_token(scope="keys:verify")["access_token"]
    verdict = org.api.as_key(token).verify(str(other["key"]))
    assert verdict["code"] == "VALID"
    not_for_verify = oauth.fetch_token(scope="apps:read")["access_token"]
    response = httpx.post(
        f"{org.server.base_url}/v1/keys/verify",
        json={"key": str(other["key"])},
        headers={"Authorization": f"Bearer {not_for_verify}"},
    )
    assert response.status_code == 403


def test_a_disabled_or_deleted_keys_tokens_stop_at_once(
    org: Org, key: dict[str, object], oauth: OAuth2Client
) -> None:
    token = oauth.fetch_token()["access_token"]
    assert _bearer(org, token, "/v1/apps").status_code == 200
    org.api.patch(f"/v1/keys/{key['id']}", json={"status": "inactive"})
    refused = _bearer(org, token, "/v1/apps")
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"].startswith("Bearer")
    again = httpx.post(
        f"{org.server.base_url}{TOKEN_PATH}",
        data={"grant_type": "client_credentials"},
        auth=(str(key["id"]), str(key["key"])),
    )
    assert again.status_code == 401
    assert again.json()["error"] == "invalid_client"
    org.api.patch(f"/v1/keys/{key['id']}", json={"status": "active"})
    token = oauth.fetch_token()["access_token"]
    assert _bearer(org, token, "/v1/apps").status_code == 200
    assert org.api.delete(f"/v1/keys/{key['id']}").status_code == 204
    assert _bearer(org, token, "/v1/apps").status_code == 401


def test_a_token_never_outlives_its_key(org: Org) -> None:
    soon = (org.server.clock() + timedelta(seconds=120)).isoformat()  # the server's now
    key = org.api.create_key(name="short", scopes=["apps:read"], expires_at=soon)
    with _client(org, key) as client:
        assert client.fetch_token()["expires_in"] <= 120


def test_a_token_in_the_url_is_refused(org: Org, oauth: OAuth2Client) -> None:
    token = oauth.fetch_token()["access_token"]
    response = httpx.get(f"{org.server.base_url}/v1/apps", params={"access_token": token})
    assert response.status_code == 400
    assert response.json()["type"].endswith("key-in-url")


def test_a_tampered_or_unsigned_token_is_refused(org: Org, oauth: OAuth2Client) -> None:
    token = oauth.fetch_token()["access_token"]
    header, _payload, signature = token.split(".")
    claims = jwt.decode(token, options={"verify_signature": False})
    forged_payload = jwt.encode({**claims, "scope": "*"}, "x" * 32, algorithm="HS256")
    forged = f"{header}.{forged_payload.split('.')[1]}.{signature}"
    unsigned = jwt.encode({**claims, "scope": "*"}, None, algorithm="none")
    hs256 = jwt.encode(claims, "x" * 32, algorithm="HS256", headers={"kid": "sig_x"})
    for bad in (forged, unsigned, hs256, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")):
        assert _bearer(org, bad, "/v1/apps").status_code == 401, bad


def _post(org: Org, data: object, **kwargs: object) -> httpx.Response:
    return httpx.post(f"{org.server.base_url}{TOKEN_PATH}", data=data, timeout=10, **kwargs)  # type: ignore[arg-type]


def _basic(user: str, password: str) -> dict[str, str]:
    raw = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


@pytest.mark.parametrize(
    ("case", "status", "error"),
    [
        ("wrong secret", 401, "invalid_client"),
        ("another key's secret", 401, "invalid_client"),
        ("unknown client id", 401, "invalid_client"),
        ("no client authentication", 401, "invalid_client"),
        ("malformed basic", 401, "invalid_client"),
        ("bearer instead of basic", 401, "invalid_client"),
        ("both methods", 400, "invalid_request"),
        ("no grant type", 400, "invalid_request"),
        ("repeated parameter", 400, "invalid_request"),
        ("json body", 400, "invalid_request"),
        ("password grant", 400, "unsupported_grant_type"),
        ("authorization code grant", 400, "unsupported_grant_type"),
        ("malformed scope", 400, "invalid_scope"),
    ],
)
def test_refusals_are_rfc6749_errors(
    org: Org, key: dict[str, object], case: str, status: int, error: str
) -> None:
    client_id, secret = str(key["id"]), str(key["key"])
    other = org.api.create_key(name="other", scopes=["apps:read"])
    grant = {"grant_type": "client_credentials"}
    requests: dict[str, tuple[object, dict[str, object]]] = {
        "wrong secret": (grant, {"headers": _basic(client_id, _wrong(secret))}),
        "another key's secret": (grant, {"headers": _basic(client_id, str(other["key"]))}),
        "unknown client id": (grant, {"headers": _basic("key_" + "0" * 26, secret)}),
        "no client authentication": (grant, {}),
        "malformed basic": (grant, {"headers": {"Authorization": "Basic !!!"}}),
        "bearer instead of basic": (grant, {"headers": {"Authorization": f"Bearer {secret}"}}),
        "both methods": (
            {**grant, "client_id": client_id, "client_secret": secret},
            {"headers": _basic(client_id, secret)},
        ),
        "no grant type": ({}, {"headers": _basic(client_id, secret)}),
        "repeated parameter": (
            None,
            {
                "content": "grant_type=client_credentials&scope=apps:read&scope=apps:read",
                "headers": {
                    **_basic(client_id, secret),
                    "Content-Type": "application/x-www-form-urlencoded",
                },
            },
        ),
        "json body": (None, {"json": grant, "headers": _basic(client_id, secret)}),
        "password grant": (
            {"grant_type": "password", "username": "a", "password": "b"},
            {"headers": _basic(client_id, secret)},
        ),
        "authorization code grant": (
            {"grant_type": "authorization_code", "code": "x"},
            {"headers": _basic(client_id, secret)},
        ),
        "malformed scope": (
            {**grant, "scope": "not-a-scope"},
            {"headers": _basic(client_id, secret)},
        ),
    }
    data, kwargs = requests[case]
    response = _post(org, data, **kwargs)
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == error
    assert response.headers["cache-control"] == "no-store"
    assert secret not in response.text
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Basic")


def test_a_change_made_with_a_token_is_audited_as_its_key(org: Org) -> None:
    key = org.api.create_key(name="writer", scopes=["apps:write", "apps:read"])
    with _client(org, key) as client:
        token = client.fetch_token()["access_token"]
        made = client.post(
            f"{org.server.base_url}/v1/apps", json={"name": "by token", "scopes": ["apps:read"]}
        )
    assert made.status_code == 201, made.text
    events = org.api.get("/v1/audit-events", params={"action": "app.create"}).json()["data"]
    event = next(e for e in events if e["target"]["id"] == made.json()["id"])
    assert event["actor"]["id"] == key["id"]
    assert token not in str(events)
    assert str(key["key"]) not in str(events)


def _wrong(secret: str) -> str:
    """``secret`` with its last character changed (never to itself)."""
    return secret[:-1] + ("x" if secret[-1] != "x" else "y")
