"""/v1/users: inviting, listing, reading, changing and removing console users."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest

from conftest import Org
from support import problem

USER_FIELDS = {"id", "email", "name", "role", "has_password", "created_at"}
PASSWORD = "correct horse battery staple"


def fresh_email(label: str = "user") -> str:
    """Emails are unique across organizations, and the servers live for the whole session."""
    return f"{label}-{secrets.token_hex(4)}@example.com"


def invite(org: Org, **body: Any) -> dict[str, Any]:
    body.setdefault("email", fresh_email())
    response = org.api.post("/v1/users", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def test_a_user_created_with_a_password_can_sign_in_and_the_hash_never_leaves(org: Org) -> None:
    email = fresh_email("ada")

    response = org.api.post(
        "/v1/users", json={"email": email, "name": "Ada", "role": "developer", "password": PASSWORD}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == USER_FIELDS | {"set_password_url"}
    assert body["id"].startswith("usr_")
    assert body["email"] == email
    assert body["name"] == "Ada"
    assert body["role"] == "developer"
    assert body["has_password"] is True
    assert body["set_password_url"] is None
    assert "argon2" not in response.text
    assert PASSWORD not in response.text


def test_a_user_created_without_a_password_gets_a_one_time_link(org: Org) -> None:
    body = invite(org, role="viewer")

    assert body["has_password"] is False
    link = body["set_password_url"]
    assert link.startswith("/console/set-password/")
    assert len(link.removeprefix("/console/set-password/")) >= 40
    again = org.api.get(f"/v1/users/{body['id']}").json()
    assert "set_password_url" not in again  # shown once, at creation


def test_email_is_normalised_and_the_name_defaults_to_its_local_part(org: Org) -> None:
    email = fresh_email("grace")

    body = invite(org, email=f"  {email.upper()} ")

    assert body["email"] == email
    assert body["name"] == email.split("@")[0]
    assert body["role"] == "viewer"


def test_listing_is_cursor_paginated_newest_first(org: Org) -> None:
    made = [invite(org)["id"] for _ in range(3)]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2}
        if cursor:
            params["cursor"] = cursor
        response = org.api.get("/v1/users", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        for user in page["data"]:
            assert set(user) == USER_FIELDS
        seen += [u["id"] for u in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True)
    assert set(seen) == {*made, org.owner_id}


def test_a_user_reads_by_id(org: Org) -> None:
    made = invite(org, name="Linus", role="admin")

    response = org.api.get(f"/v1/users/{made['id']}")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == USER_FIELDS
    assert {k: body[k] for k in USER_FIELDS} == {k: made[k] for k in USER_FIELDS}


def test_the_org_owner_is_listed_as_an_owner(org: Org) -> None:
    owner = org.api.get(f"/v1/users/{org.owner_id}").json()

    assert owner["role"] == "owner"


def test_name_and_role_can_change(org: Org) -> None:
    made = invite(org, name="Barbara", role="viewer")

    renamed = org.api.patch(f"/v1/users/{made['id']}", json={"name": "Barbara L."})
    promoted = org.api.patch(f"/v1/users/{made['id']}", json={"role": "developer"})

    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "Barbara L."
    assert renamed.json()["role"] == "viewer"
    assert promoted.status_code == 200, promoted.text
    assert promoted.json() == {**renamed.json(), "role": "developer"}
    assert org.api.get(f"/v1/users/{made['id']}").json() == promoted.json()


def test_a_deleted_user_is_gone(org: Org) -> None:
    made = invite(org)

    response = org.api.delete(f"/v1/users/{made['id']}")

    assert response.status_code == 204
    assert response.content == b""
    problem(org.api.get(f"/v1/users/{made['id']}"), 404)
    problem(org.api.delete(f"/v1/users/{made['id']}"), 404)


def test_a_taken_email_is_a_conflict_naming_email(org: Org, other_org: Org) -> None:
    email = fresh_email("taken")
    invite(org, email=email)

    problem(org.api.post("/v1/users", json={"email": email}), 409, "email")
    problem(org.api.post("/v1/users", json={"email": email.upper()}), 409, "email")
    # One email signs in to one organization.
    problem(other_org.api.post("/v1/users", json={"email": email}), 409, "email")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"role": "superuser"}, "role"),
        ({"password": "too short"}, "password"),
        ({"password": "x" * 1025}, "password"),
        ({"name": "n" * 101}, "name"),
        ({"is_admin": True}, "is_admin"),
    ],
)
def test_invalid_creation_names_the_field(org: Org, body: dict[str, Any], field: str) -> None:
    problem(org.api.post("/v1/users", json={"email": fresh_email(), **body}), 422, field)


@pytest.mark.parametrize(
    ("body", "field"),
    [({"role": "root"}, "role"), ({"name": ""}, "name"), ({"email": "x@example.com"}, "email")],
)
def test_invalid_changes_name_the_field(org: Org, body: dict[str, Any], field: str) -> None:
    made = invite(org)

    problem(org.api.patch(f"/v1/users/{made['id']}", json=body), 422, field)


def test_only_owners_make_owners(org: Org) -> None:
    admin_key = org.key_with("users:*", "api_keys:*")
    made = invite(org, role="viewer")

    creating = admin_key.post("/v1/users", json={"email": fresh_email(), "role": "owner"})
    promoting = admin_key.patch(f"/v1/users/{made['id']}", json={"role": "owner"})

    assert problem(creating, 403)["missing_scope"] == "org:own"
    assert problem(promoting, 403)["missing_scope"] == "org:own"
    assert org.api.get(f"/v1/users/{made['id']}").json()["role"] == "viewer"


def test_only_owners_demote_or_remove_owners(org: Org) -> None:
    second = invite(org, role="owner")
    admin_key = org.key_with("users:*", "api_keys:*")

    assert problem(admin_key.patch(f"/v1/users/{second['id']}", json={"role": "viewer"}), 403)
    assert problem(admin_key.delete(f"/v1/users/{second['id']}"), 403)
    assert org.api.get(f"/v1/users/{second['id']}").json()["role"] == "owner"


def test_nobody_grants_a_role_more_powerful_than_their_own(org: Org) -> None:
    user_manager = org.key_with("users:write", "users:read")
    made = invite(org, role="viewer")

    creating = user_manager.post("/v1/users", json={"email": fresh_email(), "role": "admin"})
    promoting = user_manager.patch(f"/v1/users/{made['id']}", json={"role": "admin"})

    body = problem(creating, 403, "role")
    assert body["type"].endswith("scope-escalation")
    assert problem(promoting, 403, "role")["type"].endswith("scope-escalation")
    # Even a viewer reads api_keys, apps and more: this key holds none of that.
    problem(user_manager.post("/v1/users", json={"email": fresh_email()}), 403, "role")


def test_a_key_holding_a_role_s_scopes_may_grant_that_role(org: Org) -> None:
    developer_maker = org.key_with(
        "users:write",
        "api_keys:*",
        "apps:*",
        "resources:read",
        "profiles:read",
        "keys:verify",
    )

    response = developer_maker.post("/v1/users", json={"email": fresh_email(), "role": "developer"})

    assert response.status_code == 201, response.text
    problem(developer_maker.post("/v1/users", json={"email": fresh_email()}), 403, "role")


def test_the_last_owner_can_be_neither_demoted_nor_removed(org: Org) -> None:
    demoting = org.api.patch(f"/v1/users/{org.owner_id}", json={"role": "admin"})
    removing = org.api.delete(f"/v1/users/{org.owner_id}")

    assert "last owner" in problem(demoting, 409)["detail"]
    assert "last owner" in problem(removing, 409)["detail"]
    assert org.api.get(f"/v1/users/{org.owner_id}").json()["role"] == "owner"


def test_with_a_second_owner_the_first_can_be_demoted_and_then_not_the_second(org: Org) -> None:
    second = invite(org, role="owner")

    demoted = org.api.patch(f"/v1/users/{org.owner_id}", json={"role": "admin"})

    assert demoted.status_code == 200, demoted.text
    assert demoted.json()["role"] == "admin"
    problem(org.api.patch(f"/v1/users/{second['id']}", json={"role": "admin"}), 409)
    problem(org.api.delete(f"/v1/users/{second['id']}"), 409)


def test_a_second_owner_can_be_removed(org: Org) -> None:
    second = invite(org, role="owner")

    assert org.api.delete(f"/v1/users/{second['id']}").status_code == 204
    problem(org.api.delete(f"/v1/users/{org.owner_id}"), 409)


def test_another_org_s_users_do_not_exist_for_this_org(org: Org, other_org: Org) -> None:
    theirs = invite(other_org)

    for response in (
        org.api.get(f"/v1/users/{theirs['id']}"),
        org.api.patch(f"/v1/users/{theirs['id']}", json={"name": "mine now"}),
        org.api.delete(f"/v1/users/{theirs['id']}"),
        org.api.delete(f"/v1/users/{other_org.owner_id}"),
    ):
        problem(response, 404)
    listed = {u["id"] for u in org.api.get("/v1/users").json()["data"]}
    assert theirs["id"] not in listed
    assert other_org.owner_id not in listed
    assert other_org.api.get(f"/v1/users/{theirs['id']}").json()["name"] == theirs["name"]


@pytest.mark.parametrize(
    ("scopes", "method", "path", "needed"),
    [
        (["api_keys:read"], "GET", "/v1/users", "users:read"),
        (["users:read"], "POST", "/v1/users", "users:write"),
        (["users:read"], "PATCH", "/v1/users/{id}", "users:write"),
        (["users:read", "users:write"], "DELETE", "/v1/users/{id}", "users:delete"),
        (["users:write"], "GET", "/v1/users/{id}", "users:read"),
    ],
)
def test_each_operation_needs_its_scope(
    org: Org, scopes: list[str], method: str, path: str, needed: str
) -> None:
    made = invite(org)
    caller = org.key_with(*scopes)
    body = {"email": fresh_email()} if method == "POST" else {"name": "x"}

    response = caller.http.request(
        method,
        path.format(id=made["id"]),
        json=body if method in ("POST", "PATCH") else None,
    )

    assert problem(response, 403)["missing_scope"] == needed
    assert org.api.get(f"/v1/users/{made['id']}").json()["name"] == made["name"]


def test_users_need_an_api_key(org: Org) -> None:
    response = httpx.get(f"{org.server.base_url}/v1/users", timeout=15)

    problem(response, 401)
