"""/v1/apps: groups of keys sharing one scope set, and how that set governs their keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from conftest import Api, Org
from support import problem

APP_FIELDS = {
    "id",
    "name",
    "description",
    "scopes",
    "full_access",
    "key_count",
    "created_by",
    "created_at",
    "updated_at",
    "ratelimits",
}


def create_app(api: Api, name: str = "billing", **body: Any) -> dict[str, Any]:
    body.setdefault("scopes", ["apps:read"])
    response = api.post("/v1/apps", json={"name": name, **body})
    assert response.status_code == 201, response.text
    app: dict[str, Any] = response.json()
    return app


def key_in(api: Api, app_id: str, **body: Any) -> dict[str, Any]:
    return api.create_key(name=body.pop("name", "app key"), app_id=app_id, **body)


# ---- create and read ----------------------------------------------------------------------


def test_creating_an_app_answers_201_with_every_field(org: Org) -> None:
    response = org.api.post(
        "/v1/apps",
        json={
            "name": "Billing service",
            "description": "Charges customers",
            "scopes": ["apps:read", "api_keys:read"],
        },
    )

    assert response.status_code == 201, response.text
    app = response.json()
    assert set(app) == APP_FIELDS
    assert app["id"].startswith("app_")
    assert app["name"] == "Billing service"
    assert app["description"] == "Charges customers"
    assert sorted(app["scopes"]) == ["api_keys:read", "apps:read"]
    assert app["full_access"] is False
    assert app["key_count"] == 0
    assert app["created_by"] == org.owner_key_id
    created_at = datetime.fromisoformat(app["created_at"])
    assert created_at.tzinfo is not None
    assert datetime.fromisoformat(app["updated_at"]) == created_at


def test_an_app_records_the_key_that_created_it(org: Org) -> None:
    creator = org.api.create_key(scopes=["apps:write", "apps:read"])

    app = create_app(org.api.as_key(str(creator["key"])), scopes=["apps:read"])

    assert app["created_by"] == creator["id"]


def test_a_created_app_reads_back_the_same(org: Org) -> None:
    app = create_app(org.api, description="reads back")

    response = org.api.get(f"/v1/apps/{app['id']}")

    assert response.status_code == 200
    assert response.json() == app


def test_an_unknown_app_is_404(org: Org) -> None:
    problem(org.api.get("/v1/apps/app_01hzzzzzzzzzzzzzzzzzzzzzzz"), 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "description": "x" * 1001}, "description"),
        ({"name": "ok", "scopes": "apps:read"}, "scopes"),
        ({"name": "ok", "scopes": ["apps:read"] * 201}, "scopes"),
        ({"name": "ok", "colour": "blue"}, "colour"),
    ],
)
def test_creating_an_app_with_invalid_input_is_422_naming_the_field(
    org: Org, body: dict[str, Any], field: str
) -> None:
    problem(org.api.post("/v1/apps", json=body), 422, field)


def test_a_duplicate_app_name_is_409_naming_name(org: Org) -> None:
    create_app(org.api, name="billing")

    problem(org.api.post("/v1/apps", json={"name": "billing", "scopes": []}), 409, "name")


def test_an_app_name_is_stored_trimmed_and_compared_trimmed(org: Org) -> None:
    app = create_app(org.api, name="  billing  ")

    assert app["name"] == "billing"
    problem(org.api.post("/v1/apps", json={"name": " billing", "scopes": []}), 409, "name")


def test_the_same_app_name_may_exist_in_another_org(org: Org, other_org: Org) -> None:
    create_app(org.api, name="billing")

    create_app(other_org.api, name="billing")


# ---- listing ------------------------------------------------------------------------------


def test_listing_apps_walks_every_page_without_duplicates_or_loss(org: Org) -> None:
    created = {create_app(org.api, name=f"app {n}")["id"] for n in range(7)}

    seen: list[str] = []
    pages = 0
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor is not None:
            params["cursor"] = cursor
        response = org.api.get("/v1/apps", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"data", "next_cursor"}
        assert len(page["data"]) <= 3
        seen += [app["id"] for app in page["data"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == len(set(seen))
    assert set(seen) == created
    assert pages == 3


def test_listing_apps_shows_only_the_callers_org(org: Org, other_org: Org) -> None:
    mine = create_app(org.api, name="mine")
    create_app(other_org.api, name="theirs")

    listed = org.api.get("/v1/apps").json()["data"]

    assert [app["id"] for app in listed] == [mine["id"]]
    assert listed[0] == mine


@pytest.mark.parametrize(
    "cursor",
    ["nonsense", "app_", "key_01hzzzzzzzzzzzzzzzzzzzzzzz", "app_01hzz"],
    ids=["garbage", "bare-prefix", "another-kind-of-id", "truncated"],
)
def test_an_invalid_cursor_is_422_naming_cursor(org: Org, cursor: str) -> None:
    problem(org.api.get("/v1/apps", params={"cursor": cursor}), 422, "cursor")


@pytest.mark.parametrize("limit", [0, -1, 201, 1000, "ten"])
def test_a_limit_outside_1_to_200_is_422_naming_limit(org: Org, limit: object) -> None:
    problem(org.api.get("/v1/apps", params={"limit": limit}), 422, "limit")


# ---- update -------------------------------------------------------------------------------


def test_renaming_an_app_changes_its_name_and_nothing_else(org: Org) -> None:
    app = create_app(org.api, name="old name", description="kept", scopes=["apps:read"])

    response = org.api.patch(f"/v1/apps/{app['id']}", json={"name": "new name"})

    assert response.status_code == 200, response.text
    renamed = response.json()
    assert renamed["name"] == "new name"
    assert renamed["description"] == "kept"
    assert renamed["scopes"] == ["apps:read"]
    assert renamed["created_at"] == app["created_at"]
    assert datetime.fromisoformat(renamed["updated_at"]) >= datetime.fromisoformat(
        app["updated_at"]
    )
    assert org.api.get(f"/v1/apps/{app['id']}").json() == renamed


def test_renaming_an_app_to_its_own_name_is_allowed(org: Org) -> None:
    app = create_app(org.api, name="same")

    assert org.api.patch(f"/v1/apps/{app['id']}", json={"name": "same"}).status_code == 200


def test_renaming_an_app_to_a_taken_name_is_409_naming_name(org: Org) -> None:
    create_app(org.api, name="taken")
    app = create_app(org.api, name="free")

    problem(org.api.patch(f"/v1/apps/{app['id']}", json={"name": "taken"}), 409, "name")
    assert org.api.get(f"/v1/apps/{app['id']}").json()["name"] == "free"


@pytest.mark.parametrize("field", ["name", "description", "scopes"])
def test_null_in_an_app_patch_is_422_naming_the_field(org: Org, field: str) -> None:
    app = create_app(org.api)

    problem(org.api.patch(f"/v1/apps/{app['id']}", json={field: None}), 422, field)


def test_an_unknown_field_in_an_app_patch_is_422_naming_it(org: Org) -> None:
    app = create_app(org.api)

    problem(org.api.patch(f"/v1/apps/{app['id']}", json={"owner": "me"}), 422, "owner")


@pytest.mark.parametrize(
    ("scopes", "field"),
    [
        (["nope:read"], "scopes[0]"),
        (["apps:read", "apps:fly"], "scopes[1]"),
        (["apps:read", "api_keys:read", "Not A Scope"], "scopes[2]"),
        (["keys:read"], "scopes[0]"),
    ],
    ids=["unknown-resource", "unknown-action", "malformed", "action-of-another-resource"],
)
@pytest.mark.parametrize("method", ["post", "patch"])
def test_scopes_outside_the_catalogue_are_422_naming_each_entry(
    org: Org, method: str, scopes: list[str], field: str
) -> None:
    if method == "post":
        response = org.api.post("/v1/apps", json={"name": "bad scopes", "scopes": scopes})
    else:
        app = create_app(org.api)
        response = org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": scopes})

    problem(response, 422, field)


# ---- scopes govern the app's keys -----------------------------------------------------------


def test_an_app_scope_change_governs_every_key_on_its_next_verification(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    app = create_app(org.api, scopes=["api_keys:read", "apps:read"])
    keys = [key_in(org.api, app["id"], name=f"key {n}") for n in range(2)]
    for key in keys:
        verdict = verifier.verify(str(key["key"]), ["api_keys:read"])
        assert verdict["code"] == "VALID", verdict

    response = org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]})
    assert response.status_code == 200, response.text
    assert response.json()["scopes"] == ["apps:read"]

    for key in keys:
        verdict = verifier.verify(str(key["key"]), ["api_keys:read"])
        assert verdict["code"] == "INSUFFICIENT_SCOPE", verdict
        assert verdict["valid"] is False
        assert verdict["scopes"] == ["apps:read"]
        assert verifier.verify(str(key["key"]), ["apps:read"])["code"] == "VALID"
        shown = org.api.get(f"/v1/keys/{key['id']}").json()
        assert shown["effective_scopes"] == ["apps:read"]
        assert shown["scopes"] == []


def test_an_app_scope_change_governs_what_its_keys_may_do_on_the_api(org: Org) -> None:
    app = create_app(org.api, scopes=["apps:read", "api_keys:read"])
    member = org.api.as_key(str(key_in(org.api, app["id"])["key"]))
    assert member.get("/v1/keys").status_code == 200

    org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]})

    body = problem(member.get("/v1/keys"), 403)
    assert body["missing_scope"] == "api_keys:read"


def test_a_key_with_its_own_scopes_in_an_app_gets_the_intersection(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    app = create_app(org.api, scopes=["api_keys:read", "apps:read"])

    key = key_in(org.api, app["id"], scopes=["apps:read", "profiles:read"])

    assert key["scopes"] == ["apps:read", "profiles:read"]
    assert key["effective_scopes"] == ["apps:read"]
    assert verifier.verify(str(key["key"]), ["apps:read"])["code"] == "VALID"
    for outside in ("api_keys:read", "profiles:read"):
        assert verifier.verify(str(key["key"]), [outside])["code"] == "INSUFFICIENT_SCOPE"


def test_a_key_with_own_scopes_narrows_a_later_scope_change_of_its_app(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    app = create_app(org.api, scopes=["apps:read"])
    key = key_in(org.api, app["id"], scopes=["apps:read", "profiles:read"])

    org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read", "profiles:read"]})

    assert org.api.get(f"/v1/keys/{key['id']}").json()["effective_scopes"] == [
        "apps:read",
        "profiles:read",
    ]
    assert verifier.verify(str(key["key"]), ["profiles:read"])["code"] == "VALID"


# ---- key_count and deletion -----------------------------------------------------------------


def test_key_count_counts_the_apps_keys(org: Org) -> None:
    app = create_app(org.api)
    keys = [key_in(org.api, app["id"], name=f"key {n}") for n in range(3)]
    org.api.create_key(name="outside the app")

    assert org.api.get(f"/v1/apps/{app['id']}").json()["key_count"] == 3
    org.api.delete(f"/v1/keys/{keys[0]['id']}")
    assert org.api.get(f"/v1/apps/{app['id']}").json()["key_count"] == 2
    listed = org.api.get("/v1/apps").json()["data"]
    assert [a["key_count"] for a in listed if a["id"] == app["id"]] == [2]


def test_deleting_an_app_deletes_it_and_every_key_in_it(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    app = create_app(org.api)
    keys = [key_in(org.api, app["id"], name=f"key {n}") for n in range(2)]
    bystander = org.api.create_key(name="not in the app")
    for key in keys:  # warm the verification cache: deletion must reach it too
        assert verifier.verify(str(key["key"]))["code"] == "VALID"

    response = org.api.delete(f"/v1/apps/{app['id']}")

    assert response.status_code == 204
    assert response.content == b""
    problem(org.api.get(f"/v1/apps/{app['id']}"), 404)
    for key in keys:
        problem(org.api.get(f"/v1/keys/{key['id']}"), 404)
        verdict = verifier.verify(str(key["key"]))
        assert verdict["code"] == "NOT_FOUND"
        assert verdict["valid"] is False
    assert org.api.get(f"/v1/keys/{bystander['id']}").status_code == 200
    assert verifier.verify(str(bystander["key"]))["code"] == "VALID"


def test_deleting_an_app_twice_is_404_the_second_time(org: Org) -> None:
    app = create_app(org.api)

    assert org.api.delete(f"/v1/apps/{app['id']}").status_code == 204
    problem(org.api.delete(f"/v1/apps/{app['id']}"), 404)


# ---- full access and explicit scopes --------------------------------------------------------


@pytest.mark.parametrize("scopes", [[], ["*"]], ids=["empty", "star"])
def test_an_app_without_scopes_or_with_star_has_full_access(org: Org, scopes: list[str]) -> None:
    verifier = org.key_with("keys:verify")

    app = create_app(org.api, scopes=scopes)
    key = key_in(org.api, app["id"])

    assert app["full_access"] is True
    assert key["full_access"] is True
    assert verifier.verify(str(key["key"]), ["users:delete"])["code"] == "VALID"


def test_an_app_created_without_a_scopes_field_has_full_access(org: Org) -> None:
    response = org.api.post("/v1/apps", json={"name": "no scopes field"})

    assert response.status_code == 201, response.text
    assert response.json()["full_access"] is True


def test_changing_scopes_to_empty_gives_full_access(org: Org) -> None:
    app = create_app(org.api, scopes=["apps:read"])

    changed = org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": []}).json()

    assert changed["full_access"] is True


def test_an_app_with_scopes_is_not_full_access_after_narrowing(org: Org) -> None:
    app = create_app(org.api, scopes=[])

    changed = org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]}).json()

    assert changed["full_access"] is False
    assert changed["scopes"] == ["apps:read"]


def test_an_org_requiring_explicit_scopes_refuses_an_app_without_scopes(org: Org) -> None:
    app = create_app(org.api, scopes=["apps:read"])
    assert org.api.patch("/v1/org", json={"require_explicit_scopes": True}).status_code == 200

    problem(org.api.post("/v1/apps", json={"name": "open", "scopes": []}), 422, "scopes")
    problem(org.api.post("/v1/apps", json={"name": "open"}), 422, "scopes")
    problem(org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": []}), 422, "scopes")
    assert org.api.get(f"/v1/apps/{app['id']}").json()["scopes"] == ["apps:read"]
    create_app(org.api, name="explicit", scopes=["apps:read"])


# ---- no escalation ---------------------------------------------------------------------------


def limited(org: Org) -> Api:
    return org.key_with("apps:write", "apps:read", "api_keys:read")


@pytest.mark.parametrize(
    "scopes",
    [["users:write"], ["apps:read", "users:write"], ["apps:*"], ["*"], []],
    ids=["unheld-scope", "one-unheld-among-held", "wildcard-wider-than-held", "star", "empty"],
)
def test_a_caller_cannot_create_an_app_broader_than_itself(org: Org, scopes: list[str]) -> None:
    response = limited(org).post("/v1/apps", json={"name": "escalation", "scopes": scopes})

    problem(response, 403, "scopes")
    assert org.api.get("/v1/apps").json()["data"] == []


@pytest.mark.parametrize(
    "scopes",
    [["users:write"], ["apps:read", "users:write"], ["apps:*"], ["*"], []],
    ids=["unheld-scope", "one-unheld-among-held", "wildcard-wider-than-held", "star", "empty"],
)
def test_a_caller_cannot_widen_an_app_beyond_itself(org: Org, scopes: list[str]) -> None:
    app = create_app(org.api, scopes=["apps:read"])

    response = limited(org).patch(f"/v1/apps/{app['id']}", json={"scopes": scopes})

    problem(response, 403, "scopes")
    assert org.api.get(f"/v1/apps/{app['id']}").json()["scopes"] == ["apps:read"]


def test_a_caller_may_create_an_app_within_its_own_scopes(org: Org) -> None:
    app = create_app(limited(org), scopes=["apps:read", "api_keys:read"])

    assert app["full_access"] is False


# ---- isolation and authorization --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("patch", {"name": "stolen"}), ("delete", None)],
)
def test_another_orgs_app_is_404_never_403(
    org: Org, other_org: Org, method: str, body: dict[str, Any] | None
) -> None:
    app = create_app(org.api, name="private")
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}

    response = getattr(other_org.api, method)(f"/v1/apps/{app['id']}", **kwargs)

    problem(response, 404)
    assert org.api.get(f"/v1/apps/{app['id']}").json() == app


def test_a_key_cannot_join_another_orgs_app(org: Org, other_org: Org) -> None:
    app = create_app(org.api)

    response = other_org.api.post("/v1/keys", json={"name": "intruder", "app_id": app["id"]})

    problem(response, 422, "app_id")


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/v1/apps", "apps:read"),
        ("post", "/v1/apps", "apps:write"),
        ("get", "/v1/apps/{id}", "apps:read"),
        ("patch", "/v1/apps/{id}", "apps:write"),
        ("delete", "/v1/apps/{id}", "apps:delete"),
    ],
)
def test_a_key_without_the_needed_scope_is_403_naming_it(
    org: Org, method: str, path: str, scope: str
) -> None:
    app = create_app(org.api)
    everything_else = [s for s in ("apps:read", "apps:write", "apps:delete") if s != scope]
    caller = org.key_with(*everything_else)
    kwargs: dict[str, Any] = {}
    if method in ("post", "patch"):
        kwargs["json"] = {"name": "renamed", "scopes": ["apps:read"]}

    response = getattr(caller, method)(path.format(id=app["id"]), **kwargs)

    body = problem(response, 403)
    assert body["missing_scope"] == scope
    assert org.api.get(f"/v1/apps/{app['id']}").json() == app


def test_apps_without_a_key_are_401(org: Org) -> None:
    response = org.api.get("/v1/apps", headers={"Authorization": ""})

    problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
