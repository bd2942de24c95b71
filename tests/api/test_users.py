"""/v1/users: inviting, listing, reading, changing and removing console users."""

from __future__ import annotations

import secrets
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from keyplane.domain.errors import InvalidCredentials, InvalidInput, NotFound
from keyplane.domain.models import AuditEvent
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import audit_events

from conftest import Org
from support import problem

USER_FIELDS = {"id", "email", "name", "role", "has_password", "created_at"}
PASSWORD = "correct horse battery staple"


def fresh_email(label: str = "user") -> str:
    """The servers live for the whole session: every test makes its own people."""
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


def test_an_email_is_taken_only_within_one_organization(org: Org, other_org: Org) -> None:
    email = fresh_email("taken")
    invite(org, email=email)

    problem(org.api.post("/v1/users", json={"email": email}), 409, "email")
    problem(org.api.post("/v1/users", json={"email": email.upper()}), 409, "email")
    # Another organization neither learns of nor blocks the person: it adds them too.
    assert other_org.api.post("/v1/users", json={"email": email}).status_code == 201


def token_of(created: dict[str, Any]) -> str:
    """The token of a creation's set-password link."""
    return str(created["set_password_url"]).removeprefix("/console/set-password/")


def _shape(body: dict[str, Any]) -> dict[str, Any]:
    """What an answer says beyond the values the caller chose or that are always new."""
    return {
        "fields": set(body),
        "has_password": body["has_password"],
        "link": body["set_password_url"] is not None,
    }


@pytest.mark.parametrize("elsewhere", ["invited", "signs_in"])
@pytest.mark.parametrize("password", [False, True])
def test_adding_someone_known_elsewhere_answers_as_for_a_new_person(
    org: Org, other_org: Org, elsewhere: str, password: bool
) -> None:
    email = fresh_email("known")
    invite(other_org, email=email, name="Known Elsewhere", role="admin")
    if elsewhere == "signs_in":
        _accept(other_org, email)
    body: dict[str, Any] = {"password": PASSWORD} if password else {}

    known = invite(org, email=email, **body)
    new = invite(org, **body)

    if password and elsewhere == "signs_in":
        # The one answer that differs (services/users.py, rule 3): the address's password is
        # not this organization's to choose, so it gets a link as if it had given none.
        assert _shape(known) == _shape(invite(org))
    else:
        assert _shape(known) == _shape(new)
    assert known["name"] == email.split("@")[0]  # nothing of the other organization
    assert known["role"] == "viewer"
    assert "Known Elsewhere" not in str(org.api.get("/v1/users").json())


def _accept(org: Org, email: str, password: str = PASSWORD) -> None:
    """Makes ``email`` a member of ``org`` who signs in (through the member's own link)."""
    users = org.api.get("/v1/users", params={"limit": 100}).json()["data"]
    member = next(u for u in users if u["email"] == email)
    if member["has_password"]:
        return
    org.api.delete(f"/v1/users/{member['id']}")
    made = invite(org, email=email, role=member["role"], name=member["name"])
    token = token_of(made)
    org.server.kp.users.set_password_with_token(token, password)


def test_an_initial_password_never_replaces_the_password_of_someone_elsewhere(
    org: Org, other_org: Org
) -> None:
    email = fresh_email("kept")
    invite(other_org, email=email, password=PASSWORD)

    made = invite(org, email=email, password="chosen by another organization")

    assert made["has_password"] is False
    assert made["set_password_url"] is not None
    signin = org.server.kp.signin
    assert signin.sign_in(email, PASSWORD, "127.0.0.9").user is not None
    with pytest.raises(InvalidCredentials):
        signin.sign_in(email, "chosen by another organization", "127.0.0.9")


def test_a_link_of_one_organization_cannot_change_the_password_of_someone_elsewhere(
    org: Org, other_org: Org
) -> None:
    email = fresh_email("guarded")
    invite(other_org, email=email, password=PASSWORD)
    made = invite(org, email=email)
    token = token_of(made)
    users = org.server.kp.users

    assert users.setup_link(token) == "confirm"
    with pytest.raises(InvalidInput):
        users.set_password_with_token(token, "a password of my own choosing")

    assert users.setup_link(token) is None  # burnt: no second guess
    assert org.api.get(f"/v1/users/{made['id']}").json()["has_password"] is False
    assert org.server.kp.signin.sign_in(email, PASSWORD, "127.0.0.10").user is not None


def test_the_person_joins_through_a_link_with_the_password_they_have(
    org: Org, other_org: Org
) -> None:
    email = fresh_email("joins")
    invite(other_org, email=email, password=PASSWORD)
    made = invite(org, email=email)
    token = token_of(made)

    org.server.kp.users.set_password_with_token(token, PASSWORD)

    assert org.api.get(f"/v1/users/{made['id']}").json()["has_password"] is True
    with pytest.raises(NotFound):
        org.server.kp.users.set_password_with_token(token, PASSWORD)  # used once


def test_a_link_that_chose_the_password_reaches_no_other_invitation(
    org: Org, other_org: Org
) -> None:
    email = fresh_email("pending")
    theirs = invite(other_org, email=email)
    mine = invite(org, email=email)
    my_token = token_of(mine)
    their_token = token_of(theirs)
    users = org.server.kp.users

    users.set_password_with_token(my_token, PASSWORD)  # whoever holds my link chose it

    assert org.api.get(f"/v1/users/{mine['id']}").json()["has_password"] is True
    assert other_org.api.get(f"/v1/users/{theirs['id']}").json()["has_password"] is False
    signed_in = org.server.kp.signin.sign_in(email, PASSWORD, "127.0.0.11")
    assert signed_in.user is not None
    assert signed_in.user.org_id == org.id  # the other organization is not offered
    assert users.setup_link(their_token) == "confirm"  # their link asks for the password


def test_removing_a_member_keeps_their_other_memberships_and_the_last_one_the_identity(
    org: Org, other_org: Org
) -> None:
    email = fresh_email("leaves")
    mine = invite(org, email=email, password=PASSWORD)
    theirs = invite(other_org, email=email)
    store = org.server.kp.store

    assert org.api.delete(f"/v1/users/{mine['id']}").status_code == 204

    assert other_org.api.get(f"/v1/users/{theirs['id']}").status_code == 200
    with store.transaction() as tx:
        assert tx.identities.find_by_email(email) is not None
    assert other_org.api.delete(f"/v1/users/{theirs['id']}").status_code == 204
    with store.transaction() as tx:
        assert tx.identities.find_by_email(email) is None
    assert invite(org, email=email)["has_password"] is False  # a new person again


def test_setting_a_password_is_audited_without_the_password(org: Org) -> None:
    made = invite(org, password=PASSWORD)
    link = invite(org)
    token = token_of(link)
    org.server.kp.users.set_password_with_token(token, PASSWORD)
    org.server.kp.users.set_password(org.owner_id, PASSWORD)

    events = _audit(org, "user.password_set")

    assert {(e.target_id, e.details["via"]) for e in events} == {
        (made["id"], "initial"),
        (link["id"], "link"),
        (org.owner_id, "operator"),
    }
    assert all(PASSWORD not in str(e.details) for e in events)


def _audit(org: Org, action: str) -> list[AuditEvent]:
    store = org.server.kp.store
    assert isinstance(store, SqlStore)
    query = select(audit_events).where(
        audit_events.c.org_id == org.id, audit_events.c.action == action
    )
    with store.engine.connect() as conn:
        return [AuditEvent(**dict(row._mapping)) for row in conn.execute(query)]


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
