"""POST /v1/keys/verify: the verdicts, what they carry, and the cache behind them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from keyplane.domain.tokens import mint_key

from conftest import Org, Server
from support import problem


@contextmanager
def selects(server: Server) -> Iterator[list[str]]:
    """The SELECT statements the server sends to its database meanwhile."""
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append(statement)

    event.listen(server.kp.store.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(server.kp.store.engine, "before_cursor_execute", count)


@pytest.fixture
def verifier(org: Org) -> Any:
    """A client holding only keys:verify, as a calling service would."""
    return org.key_with("keys:verify")


def test_a_valid_key_answers_its_scopes_profile_and_metadata(org: Org, verifier: Any) -> None:
    profile = org.api.post(
        "/v1/profiles", json={"name": "gpu", "settings": {"model": "large"}}
    ).json()
    key = org.api.create_key(
        scopes=["api_keys:read", "apps:*"], profile_id=profile["id"], metadata={"tenant": 7}
    )
    verdict = verifier.verify(str(key["key"]), ["apps:write"])
    assert verdict["valid"] is True
    assert verdict["code"] == "VALID"
    assert verdict["key_id"] == key["id"]
    assert verdict["scopes"] == ["api_keys:read", "apps:*"]
    assert verdict["profile"] == {
        "id": profile["id"],
        "name": "gpu",
        "settings": {"model": "large"},
    }
    assert verdict["metadata"] == {"tenant": 7}
    assert verdict["environment"] == "live"


def test_missing_scopes_are_named(org: Org, verifier: Any) -> None:
    key = org.api.create_key(scopes=["api_keys:read"])
    verdict = verifier.verify(str(key["key"]), ["api_keys:read", "users:write", "apps:read"])
    assert verdict["valid"] is False
    assert verdict["code"] == "INSUFFICIENT_SCOPE"
    assert verdict["missing_scopes"] == ["users:write", "apps:read"]


@pytest.mark.parametrize(
    "presented",
    [
        "",
        "hello",
        "kp_live_short",
        "Bearer kp_live_x",
        mint_key()[:-1] + "!",
        "kp_prod_" + "a" * 38,
    ],
)
def test_garbage_is_not_found(verifier: Any, presented: str) -> None:
    assert verifier.verify(presented)["code"] == "NOT_FOUND"


def test_a_checksum_failure_is_not_found_without_touching_the_database(
    org: Org, verifier: Any
) -> None:
    real = str(org.api.create_key()["key"])
    flipped = real[:20] + ("A" if real[20] != "A" else "B") + real[21:]
    verifier.verify(real)  # warm the caller's own key
    with selects(org.server) as seen:
        assert verifier.verify(flipped)["code"] == "NOT_FOUND"
        assert verifier.verify("kp_live_garbage")["code"] == "NOT_FOUND"
    assert seen == []


def test_a_warm_verification_touches_no_database(org: Org, verifier: Any) -> None:
    key = str(org.api.create_key(scopes=["apps:read"])["key"])
    assert verifier.verify(key, ["apps:read"])["code"] == "VALID"
    with selects(org.server) as seen:
        for _ in range(20):
            assert verifier.verify(key, ["apps:read"])["code"] == "VALID"
    assert seen == []


def test_an_unknown_well_formed_key_is_remembered_as_missing(org: Org, verifier: Any) -> None:
    unknown = mint_key()
    assert verifier.verify(unknown)["code"] == "NOT_FOUND"
    with selects(org.server) as seen:
        assert verifier.verify(unknown)["code"] == "NOT_FOUND"
    assert seen == []


def test_another_organizations_key_is_not_found(verifier: Any, other_org: Org) -> None:
    theirs = str(other_org.api.create_key()["key"])
    verdict = verifier.verify(theirs)
    assert verdict["code"] == "NOT_FOUND"
    assert verdict["key_id"] is None


def test_a_disabled_key_is_disabled_until_enabled_again(org: Org, verifier: Any) -> None:
    key = org.api.create_key()
    assert verifier.verify(str(key["key"]))["code"] == "VALID"
    org.api.patch(f"/v1/keys/{key['id']}", json={"status": "inactive"})
    assert verifier.verify(str(key["key"]))["code"] == "DISABLED"
    org.api.patch(f"/v1/keys/{key['id']}", json={"status": "active"})
    assert verifier.verify(str(key["key"]))["code"] == "VALID"


def test_an_expired_key_is_expired(org: Org, verifier: Any) -> None:
    soon = (org.server.clock() + timedelta(seconds=30)).isoformat()
    key = org.api.create_key(expires_at=soon)
    assert verifier.verify(str(key["key"]))["code"] == "VALID"
    org.server.clock.advance(timedelta(minutes=1))
    verdict = verifier.verify(str(key["key"]))
    assert verdict["code"] == "EXPIRED"
    assert verdict["valid"] is False


def test_a_deleted_key_stops_verifying_at_once(org: Org, verifier: Any) -> None:
    key = org.api.create_key()
    assert verifier.verify(str(key["key"]))["code"] == "VALID"
    org.api.delete(f"/v1/keys/{key['id']}")
    assert verifier.verify(str(key["key"]))["code"] == "NOT_FOUND"


def test_an_app_scope_change_governs_its_keys_on_the_next_verification(
    org: Org, verifier: Any
) -> None:
    app = org.api.post("/v1/apps", json={"name": "etl", "scopes": ["api_keys:read"]}).json()
    first = str(org.api.create_key(name="one", app_id=app["id"])["key"])
    second = str(org.api.create_key(name="two", app_id=app["id"])["key"])
    assert verifier.verify(first, ["api_keys:read"])["code"] == "VALID"
    assert verifier.verify(second, ["api_keys:read"])["code"] == "VALID"
    org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]})
    for key in (first, second):
        assert verifier.verify(key, ["api_keys:read"])["code"] == "INSUFFICIENT_SCOPE"
        verdict = verifier.verify(key, ["apps:read"])
        assert verdict["code"] == "VALID"
        assert verdict["app_id"] == app["id"]


def test_a_profile_change_shows_in_the_next_verification(org: Org, verifier: Any) -> None:
    profile = org.api.post("/v1/profiles", json={"name": "p", "settings": {"v": 1}}).json()
    key = str(org.api.create_key(profile_id=profile["id"])["key"])
    assert verifier.verify(key)["profile"]["settings"] == {"v": 1}
    org.api.patch(f"/v1/profiles/{profile['id']}", json={"settings": {"v": 2}})
    assert verifier.verify(key)["profile"]["settings"] == {"v": 2}


def test_the_caller_needs_keys_verify(org: Org) -> None:
    key = str(org.api.create_key()["key"])
    reader = org.key_with("api_keys:read")
    body = problem(reader.post("/v1/keys/verify", json={"key": key}), 403)
    assert body["missing_scope"] == "keys:verify"


def test_an_unauthenticated_caller_gets_401(org: Org) -> None:
    anonymous = org.api.as_key("none")
    response = anonymous.http.post(
        "/v1/keys/verify", json={"key": mint_key()}, headers={"Authorization": ""}
    )
    problem(response, 401)
    assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "key"),
        ({"key": 42}, "key"),
        ({"key": "k", "scopes": "apps:read"}, "scopes"),
        ({"key": "k", "scopes": ["apps"]}, "scopes[0]"),
        ({"key": "k", "scopes": ["apps:read", 7]}, "scopes[1]"),
        ({"key": "k", "ip": "300.1.1.1"}, "ip"),
        ({"key": "k", "extra": True}, "extra"),
        ([1, 2], "body"),
    ],
)
def test_invalid_requests_name_the_field(verifier: Any, body: Any, field: str) -> None:
    problem(verifier.post("/v1/keys/verify", json=body), 422, field)


def test_malformed_json_is_400(verifier: Any) -> None:
    response = verifier.post(
        "/v1/keys/verify", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem(response, 400)


def test_an_ip_is_accepted(org: Org, verifier: Any) -> None:
    key = str(org.api.create_key()["key"])
    response = verifier.post("/v1/keys/verify", json={"key": key, "ip": "2001:db8::1"})
    assert response.json()["code"] == "VALID"
