"""/v1/keys: creating, listing, reading, changing and deleting keys."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest

from keyplane.domain.tokens import parse_key

from conftest import Org
from support import eventually, problem

CREATED_FIELDS = {
    "id",
    "name",
    "description",
    "key",
    "client_id",
    "client_secret",
    "masked_key",
    "scopes",
    "effective_scopes",
    "full_access",
    "status",
    "app_id",
    "profile_id",
    "metadata",
    "environment",
    "created_at",
    "created_by",
    "expires_at",
    "last_used_at",
}


def test_creation_answers_the_full_key_once_with_client_credentials(org: Org) -> None:
    created = org.api.create_key(
        name="billing service",
        description="reads invoices",
        scopes=["api_keys:read"],
        metadata={"team": "billing"},
    )
    assert set(created) >= CREATED_FIELDS
    key = str(created["key"])
    assert parse_key(key) is not None
    assert key.startswith("kp_live_")
    assert created["client_secret"] == key
    assert created["client_id"] == created["id"]
    assert str(created["id"]).startswith("key_")
    assert created["masked_key"] == f"kp_live_…{key[-4:]}"
    assert created["scopes"] == ["api_keys:read"]
    assert created["effective_scopes"] == ["api_keys:read"]
    assert created["full_access"] is False
    assert created["status"] == "active"
    assert created["created_by"] == org.owner_key_id
    assert created["metadata"] == {"team": "billing"}
    assert created["last_used_at"] is None


def test_a_key_without_scopes_says_plainly_it_has_full_access(org: Org) -> None:
    created = org.api.create_key(name="everything")
    assert created["full_access"] is True
    assert created["effective_scopes"] == ["*"]
    assert "FULL ACCESS" in str(created["warning"])


def test_test_environment_keys_carry_their_prefix(org: Org) -> None:
    created = org.api.create_key(environment="test")
    assert str(created["key"]).startswith("kp_test_")
    assert created["environment"] == "test"


def test_reading_and_listing_never_show_the_key_or_its_digest(org: Org) -> None:
    created = org.api.create_key(scopes=["apps:read"])
    key = str(created["key"])
    for response in (org.api.get(f"/v1/keys/{created['id']}"), org.api.get("/v1/keys")):
        assert response.status_code == 200
        assert key not in response.text
        assert key[8:40] not in response.text
        assert "digest" not in response.text
        assert '"key"' not in response.text
    body = org.api.get(f"/v1/keys/{created['id']}").json()
    assert body["masked_key"] == created["masked_key"]


def test_expires_in_days_sets_the_expiry(org: Org) -> None:
    now = org.server.clock()
    created = org.api.create_key(expires_in_days=30)
    expires = _parse(created["expires_at"])
    assert timedelta(days=29, hours=23) < expires - now < timedelta(days=30, minutes=1)


def test_expires_at_is_kept_as_given(org: Org) -> None:
    when = (org.server.clock() + timedelta(days=3)).replace(microsecond=0)
    created = org.api.create_key(expires_at=when.isoformat())
    assert _parse(created["expires_at"]) == when


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "k", "description": "d" * 1001}, "description"),
        ({"name": "k", "expires_in_days": 0}, "expires_in_days"),
        ({"name": "k", "expires_in_days": 3651}, "expires_in_days"),
        ({"name": "k", "expires_at": "2020-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "k", "expires_at": "2999-01-01T00:00:00"}, "expires_at"),
        ({"name": "k", "expires_at": "next tuesday"}, "expires_at"),
        ({"name": "k", "metadata": {"blob": "x" * 5000}}, "metadata"),
        ({"name": "k", "metadata": ["not", "an", "object"]}, "metadata"),
        ({"name": "k", "environment": "prod"}, "environment"),
        ({"name": "k", "scopes": "api_keys:read"}, "scopes"),
        ({"name": "k", "scopes": ["nonsense"]}, "scopes[0]"),
        ({"name": "k", "scopes": ["api_keys:read", "ghosts:read"]}, "scopes[1]"),
        ({"name": "k", "scopes": ["api_keys:fly"]}, "scopes[0]"),
        ({"name": "k", "app_id": "app_01jzzzzzzzzzzzzzzzzzzzzzzz"}, "app_id"),
        ({"name": "k", "profile_id": "prf_01jzzzzzzzzzzzzzzzzzzzzzzz"}, "profile_id"),
        ({"name": "k", "color": "blue"}, "color"),
    ],
)
def test_invalid_creation_names_the_field(org: Org, body: dict[str, Any], field: str) -> None:
    problem(org.api.post("/v1/keys", json=body), 422, field)


def test_expires_at_and_expires_in_days_are_exclusive(org: Org) -> None:
    when = (org.server.clock() + timedelta(days=3)).isoformat()
    response = org.api.post(
        "/v1/keys", json={"name": "k", "expires_at": when, "expires_in_days": 3}
    )
    problem(response, 422, "expires_in_days")


def test_an_org_requiring_explicit_scopes_refuses_a_scopeless_key(org: Org) -> None:
    assert org.api.patch("/v1/org", json={"require_explicit_scopes": True}).status_code == 200
    body = problem(org.api.post("/v1/keys", json={"name": "k"}), 422, "scopes")
    assert "full access" in body["detail"]
    assert org.api.post("/v1/keys", json={"name": "k", "scopes": ["apps:read"]}).status_code == 201


def test_nobody_grants_what_they_do_not_hold(org: Org) -> None:
    limited = org.key_with("api_keys:write", "apps:read")
    body = problem(limited.post("/v1/keys", json={"name": "k", "scopes": ["users:read"]}), 403)
    assert "users:read" in body["detail"]
    problem(limited.post("/v1/keys", json={"name": "k"}), 403, "scopes")
    problem(limited.post("/v1/keys", json={"name": "k", "scopes": ["apps:*"]}), 403, "scopes")
    allowed = limited.post("/v1/keys", json={"name": "k", "scopes": ["apps:read"]})
    assert allowed.status_code == 201


def test_listing_is_cursor_paginated_newest_first(org: Org) -> None:
    made = [str(org.api.create_key(name=f"k{i}")["id"]) for i in range(5)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = org.api.get("/v1/keys", params=params).json()
        assert len(page["data"]) <= 2
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert set(made) <= set(seen)
    assert len(seen) == len(set(seen)) == len(made) + 1  # and the owner's key


def test_listing_filters_by_status_and_app(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "reports", "scopes": ["apps:read"]}).json()
    in_app = org.api.create_key(name="in app", app_id=app["id"])
    off = org.api.create_key(name="off")
    org.api.patch(f"/v1/keys/{off['id']}", json={"status": "inactive"})
    expiring = org.api.create_key(
        name="expiring", expires_at=(org.server.clock() + timedelta(seconds=30)).isoformat()
    )
    org.server.clock.advance(timedelta(minutes=1))

    def ids(**params: str) -> set[str]:
        return {k["id"] for k in org.api.get("/v1/keys", params=params).json()["data"]}

    assert ids(app_id=app["id"]) == {in_app["id"]}
    assert ids(status="inactive") == {off["id"]}
    assert ids(status="expired") == {expiring["id"]}
    assert off["id"] not in ids(status="active")
    assert in_app["id"] in ids(status="active")
    listed = org.api.get("/v1/keys", params={"status": "expired"}).json()["data"][0]
    assert listed["status"] == "expired"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 201}, "limit"),
        ({"cursor": "bogus"}, "cursor"),
        ({"status": "gone"}, "status"),
    ],
)
def test_bad_list_parameters_name_the_field(org: Org, params: dict[str, Any], field: str) -> None:
    problem(org.api.get("/v1/keys", params=params), 422, field)


def test_status_profile_description_and_metadata_can_change(org: Org) -> None:
    profile = org.api.post("/v1/profiles", json={"name": "gold", "settings": {"tier": 1}}).json()
    key = org.api.create_key(scopes=["apps:read"])
    changed = org.api.patch(
        f"/v1/keys/{key['id']}",
        json={
            "status": "inactive",
            "profile_id": profile["id"],
            "description": "paused",
            "metadata": {"owner": "ops"},
        },
    )
    assert changed.status_code == 200, changed.text
    body = changed.json()
    assert (body["status"], body["profile_id"], body["description"], body["metadata"]) == (
        "inactive",
        profile["id"],
        "paused",
        {"owner": "ops"},
    )
    assert body["name"] == key["name"]
    detached = org.api.patch(f"/v1/keys/{key['id']}", json={"profile_id": None}).json()
    assert detached["profile_id"] is None
    assert detached["status"] == "inactive"


@pytest.mark.parametrize(
    "field", ["name", "scopes", "app_id", "key", "client_secret", "environment"]
)
def test_immutable_fields_cannot_change(org: Org, field: str) -> None:
    key = org.api.create_key(scopes=["apps:read"])
    value: Any = ["apps:write"] if field == "scopes" else "changed"
    body = problem(org.api.patch(f"/v1/keys/{key['id']}", json={field: value}), 422, field)
    assert "immutable" in body["errors"][0]["message"]
    assert org.api.get(f"/v1/keys/{key['id']}").json()["name"] == key["name"]


@pytest.mark.parametrize("field", ["status", "description", "metadata"])
def test_null_is_refused_where_a_value_is_required(org: Org, field: str) -> None:
    key = org.api.create_key()
    problem(org.api.patch(f"/v1/keys/{key['id']}", json={field: None}), 422, field)


def test_expiry_may_move_earlier(org: Org) -> None:
    key = org.api.create_key(expires_in_days=30)
    earlier = (org.server.clock() + timedelta(days=5)).replace(microsecond=0)
    body = org.api.patch(f"/v1/keys/{key['id']}", json={"expires_at": earlier.isoformat()}).json()
    assert _parse(body["expires_at"]) == earlier


def test_expiry_may_move_later_only_within_the_org_maximum(org: Org) -> None:
    org.api.patch("/v1/org", json={"max_key_lifetime_days": 60})
    key = org.api.create_key(expires_in_days=10)
    now = org.server.clock()
    later = org.api.patch(
        f"/v1/keys/{key['id']}", json={"expires_at": (now + timedelta(days=50)).isoformat()}
    )
    assert later.status_code == 200, later.text
    too_late = org.api.patch(
        f"/v1/keys/{key['id']}", json={"expires_at": (now + timedelta(days=90)).isoformat()}
    )
    body = problem(too_late, 422, "expires_at")
    assert "60 days" in body["detail"]
    problem(org.api.patch(f"/v1/keys/{key['id']}", json={"expires_at": None}), 422, "expires_at")


def test_expiry_cannot_move_into_the_past(org: Org) -> None:
    key = org.api.create_key(expires_in_days=10)
    past = (org.server.clock() - timedelta(days=1)).isoformat()
    problem(org.api.patch(f"/v1/keys/{key['id']}", json={"expires_at": past}), 422, "expires_at")


def test_without_an_org_maximum_expiry_may_be_removed(org: Org) -> None:
    key = org.api.create_key(expires_in_days=10)
    body = org.api.patch(f"/v1/keys/{key['id']}", json={"expires_at": None}).json()
    assert body["expires_at"] is None


def test_a_key_past_its_expiry_reads_as_expired(org: Org) -> None:
    key = org.api.create_key(expires_at=(org.server.clock() + timedelta(seconds=20)).isoformat())
    assert org.api.get(f"/v1/keys/{key['id']}").json()["status"] == "active"
    org.server.clock.advance(timedelta(minutes=1))
    assert org.api.get(f"/v1/keys/{key['id']}").json()["status"] == "expired"
    # Re-enabling does not revive it: status is derived from expires_at.
    body = org.api.patch(f"/v1/keys/{key['id']}", json={"status": "active"}).json()
    assert body["status"] == "expired"


def test_deletion_is_permanent(org: Org) -> None:
    key = org.api.create_key(scopes=["apps:read"])
    assert org.api.verify(str(key["key"]))["code"] == "VALID"
    response = org.api.delete(f"/v1/keys/{key['id']}")
    assert response.status_code == 204
    assert response.content == b""
    problem(org.api.get(f"/v1/keys/{key['id']}"), 404)
    problem(org.api.delete(f"/v1/keys/{key['id']}"), 404)
    assert org.api.verify(str(key["key"]))["code"] == "NOT_FOUND"


def test_another_organizations_key_is_not_found(org: Org, other_org: Org) -> None:
    theirs = other_org.api.create_key()
    path = f"/v1/keys/{theirs['id']}"
    problem(org.api.get(path), 404)
    problem(org.api.patch(path, json={"status": "inactive"}), 404)
    problem(org.api.delete(path), 404)
    assert theirs["id"] not in {k["id"] for k in org.api.get("/v1/keys").json()["data"]}
    assert other_org.api.get(path).json()["status"] == "active"


def test_last_used_is_recorded_after_use(org: Org) -> None:
    key = org.api.create_key(scopes=["apps:read"])
    assert org.api.verify(str(key["key"]))["code"] == "VALID"
    assert eventually(lambda: org.api.get(f"/v1/keys/{key['id']}").json()["last_used_at"])
    user = org.api.as_key(str(key["key"]))
    assert user.get("/v1/apps").status_code == 200


def _parse(value: object) -> Any:
    from datetime import datetime

    text = str(value)
    assert re.match(r"\d{4}-\d\d-\d\dT", text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
