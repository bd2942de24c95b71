"""/v1/resources: the permission catalogue, built-in resources and an org's own."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import Api, Org
from support import problem

RESOURCE_FIELDS = {"name", "title", "description", "actions", "builtin", "scopes"}
CRUD = ["read", "write", "delete"]
BUILTIN_ACTIONS = {
    "api_keys": CRUD,
    "apps": CRUD,
    "resources": CRUD,
    "profiles": CRUD,
    "users": CRUD,
    "org": ["read", "write", "own"],
    "audit": ["read"],
    "analytics": ["read"],
    "webhooks": CRUD,
    "keys": ["verify"],
}


def create_resource(api: Api, name: str = "tools", **body: Any) -> dict[str, Any]:
    response = api.post("/v1/resources", json={"name": name, **body})
    assert response.status_code == 201, response.text
    resource: dict[str, Any] = response.json()
    return resource


def create_tools(api: Api) -> dict[str, Any]:
    return create_resource(api, "tools", actions=["deploy", "undeploy", "read"])


def catalogue(api: Api) -> dict[str, dict[str, Any]]:
    response = api.get("/v1/resources")
    assert response.status_code == 200, response.text
    page = response.json()
    assert page["next_cursor"] is None
    return {resource["name"]: resource for resource in page["data"]}


# ---- the catalogue ---------------------------------------------------------------------------


def test_the_catalogue_lists_every_builtin_resource_with_its_actions(org: Org) -> None:
    listed = catalogue(org.api)

    assert set(listed) == set(BUILTIN_ACTIONS)
    for name, actions in BUILTIN_ACTIONS.items():
        resource = listed[name]
        assert set(resource) == RESOURCE_FIELDS
        assert resource["builtin"] is True
        assert resource["actions"] == actions
        assert resource["title"]
        assert resource["scopes"] == [f"{name}:*"] + [f"{name}:{a}" for a in actions]


def test_the_catalogue_lists_custom_resources_after_the_builtins(org: Org) -> None:
    tools = create_tools(org.api)

    data = org.api.get("/v1/resources").json()["data"]

    assert data[-1] == tools
    assert tools["builtin"] is False
    assert all(resource["builtin"] for resource in data[:-1])


@pytest.mark.parametrize("name", sorted(BUILTIN_ACTIONS))
def test_a_builtin_resource_reads_by_name(org: Org, name: str) -> None:
    response = org.api.get(f"/v1/resources/{name}")

    assert response.status_code == 200
    assert response.json()["actions"] == BUILTIN_ACTIONS[name]
    assert response.json()["builtin"] is True


def test_an_unknown_resource_is_404(org: Org) -> None:
    problem(org.api.get("/v1/resources/nothing_here"), 404)


# ---- creating custom resources ------------------------------------------------------------------


def test_a_custom_resource_gets_read_write_delete_by_default(org: Org) -> None:
    response = org.api.post("/v1/resources", json={"name": "models"})

    assert response.status_code == 201, response.text
    models = response.json()
    assert models == {
        "name": "models",
        "title": "models",
        "description": "",
        "actions": CRUD,
        "builtin": False,
        "scopes": ["models:*", "models:read", "models:write", "models:delete"],
    }
    assert org.api.get("/v1/resources/models").json() == models


def test_a_custom_resource_may_declare_its_own_actions_title_and_description(org: Org) -> None:
    tools = create_resource(
        org.api,
        "tools",
        title="Deployment tools",
        description="What CI may do",
        actions=["deploy", "undeploy", "roll-back", "v2_sync"],
    )

    assert tools["title"] == "Deployment tools"
    assert tools["description"] == "What CI may do"
    assert tools["actions"] == ["deploy", "undeploy", "roll-back", "v2_sync"]
    assert tools["scopes"][0] == "tools:*"
    assert "tools:roll-back" in tools["scopes"]


@pytest.mark.parametrize(
    "name",
    ["Tools", "my tools", "1tools", "_tools", "tools-x", "tools:x", "", "t" * 41],
    ids=[
        "uppercase",
        "space",
        "leading-digit",
        "leading-underscore",
        "hyphen",
        "colon",
        "empty",
        "too-long",
    ],
)
def test_an_invalid_resource_name_is_422_naming_name(org: Org, name: str) -> None:
    problem(org.api.post("/v1/resources", json={"name": name}), 422, "name")


@pytest.mark.parametrize(
    ("actions", "field"),
    [
        (["Deploy"], "actions[0]"),
        (["read", "has space"], "actions[1]"),
        (["read", "write", "1st"], "actions[2]"),
        (["*"], "actions[0]"),
        (["a:b"], "actions[0]"),
        (["a" * 41], "actions[0]"),
        ([], "actions"),
        (["read", "read"], "actions"),
        ("read", "actions"),
    ],
    ids=[
        "uppercase",
        "space",
        "leading-digit",
        "star",
        "colon",
        "too-long",
        "none",
        "repeated",
        "not-a-list",
    ],
)
def test_invalid_actions_are_422_naming_the_entry(org: Org, actions: object, field: str) -> None:
    response = org.api.post("/v1/resources", json={"name": "tools", "actions": actions})

    problem(response, 422, field)
    problem(org.api.get("/v1/resources/tools"), 404)


@pytest.mark.parametrize("name", sorted(BUILTIN_ACTIONS))
def test_a_builtin_name_cannot_be_taken_by_a_custom_resource(org: Org, name: str) -> None:
    problem(org.api.post("/v1/resources", json={"name": name}), 409, "name")


def test_a_duplicate_custom_resource_is_409_naming_name(org: Org) -> None:
    create_resource(org.api, "tools")

    problem(org.api.post("/v1/resources", json={"name": "tools"}), 409, "name")


def test_an_unknown_field_in_a_new_resource_is_422_naming_it(org: Org) -> None:
    response = org.api.post("/v1/resources", json={"name": "tools", "builtin": True})

    problem(response, 422, "builtin")


# ---- built-ins are fixed ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["api_keys", "keys", "org"])
def test_a_builtin_resource_cannot_be_changed_or_deleted(org: Org, name: str) -> None:
    before = org.api.get(f"/v1/resources/{name}").json()

    problem(org.api.patch(f"/v1/resources/{name}", json={"actions": ["read"]}), 409)
    problem(org.api.patch(f"/v1/resources/{name}", json={"title": "Mine"}), 409)
    problem(org.api.delete(f"/v1/resources/{name}"), 409)
    assert org.api.get(f"/v1/resources/{name}").json() == before


# ---- custom resources in scopes ---------------------------------------------------------------


@pytest.mark.parametrize(
    "scopes",
    [["tools:deploy"], ["tools:*"], ["tools:deploy", "tools:undeploy"]],
    ids=["one-action", "wildcard", "two-actions"],
)
def test_a_custom_resource_can_be_granted_to_a_key(org: Org, scopes: list[str]) -> None:
    create_tools(org.api)
    verifier = org.key_with("keys:verify")

    key = org.api.create_key(scopes=scopes)

    assert key["effective_scopes"] == sorted(scopes)
    assert verifier.verify(str(key["key"]), ["tools:deploy"])["code"] == "VALID"
    assert verifier.verify(str(key["key"]), ["api_keys:read"])["code"] == "INSUFFICIENT_SCOPE"


def test_an_action_the_resource_lacks_is_422_naming_the_scope(org: Org) -> None:
    create_tools(org.api)

    problem(org.api.post("/v1/keys", json={"name": "k", "scopes": ["tools:fly"]}), 422, "scopes[0]")
    problem(
        org.api.post("/v1/keys", json={"name": "k", "scopes": ["tools:read", "tools:write"]}),
        422,
        "scopes[1]",
    )


def test_a_custom_resource_can_be_granted_to_an_app(org: Org) -> None:
    create_tools(org.api)

    response = org.api.post("/v1/apps", json={"name": "ci", "scopes": ["tools:deploy"]})

    assert response.status_code == 201, response.text
    problem(org.api.post("/v1/apps", json={"name": "bad", "scopes": ["tools:fly"]}), 422)


# ---- deleting custom resources --------------------------------------------------------------


def test_an_unreferenced_custom_resource_can_be_deleted(org: Org) -> None:
    create_tools(org.api)

    response = org.api.delete("/v1/resources/tools")

    assert response.status_code == 204
    assert response.content == b""
    problem(org.api.get("/v1/resources/tools"), 404)
    assert "tools" not in catalogue(org.api)
    problem(org.api.post("/v1/keys", json={"name": "k", "scopes": ["tools:read"]}), 422)


def test_deleting_an_unknown_custom_resource_is_404(org: Org) -> None:
    problem(org.api.delete("/v1/resources/tools"), 404)
    problem(org.api.patch("/v1/resources/tools", json={"title": "Tools"}), 404)


@pytest.mark.parametrize("scope", ["tools:deploy", "tools:*"])
def test_a_custom_resource_granted_to_a_key_cannot_be_deleted(org: Org, scope: str) -> None:
    create_tools(org.api)
    key = org.api.create_key(scopes=["apps:read", scope])

    body = problem(org.api.delete("/v1/resources/tools"), 409)

    assert key["id"] in body["detail"]
    assert org.api.get("/v1/resources/tools").status_code == 200
    assert org.api.delete(f"/v1/keys/{key['id']}").status_code == 204
    assert org.api.delete("/v1/resources/tools").status_code == 204


@pytest.mark.parametrize("scope", ["tools:deploy", "tools:*"])
def test_a_custom_resource_granted_to_an_app_cannot_be_deleted(org: Org, scope: str) -> None:
    create_tools(org.api)
    app = org.api.post("/v1/apps", json={"name": "ci", "scopes": [scope]}).json()

    body = problem(org.api.delete("/v1/resources/tools"), 409)

    assert app["id"] in body["detail"]
    org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]})
    assert org.api.delete("/v1/resources/tools").status_code == 204


def test_a_same_named_resource_granted_in_another_org_does_not_block_deletion(
    org: Org, other_org: Org
) -> None:
    create_tools(org.api)
    create_tools(other_org.api)
    other_org.api.create_key(scopes=["tools:deploy"])

    assert org.api.delete("/v1/resources/tools").status_code == 204
    assert other_org.api.get("/v1/resources/tools").status_code == 200


# ---- changing custom resources ----------------------------------------------------------------


def test_a_custom_resource_title_description_and_actions_can_change(org: Org) -> None:
    create_tools(org.api)

    response = org.api.patch(
        "/v1/resources/tools",
        json={
            "title": "Tools",
            "description": "Deployment",
            "actions": ["deploy", "undeploy", "read", "audit"],
        },
    )

    assert response.status_code == 200, response.text
    tools = response.json()
    assert tools["title"] == "Tools"
    assert tools["description"] == "Deployment"
    assert tools["actions"] == ["deploy", "undeploy", "read", "audit"]
    assert "tools:audit" in tools["scopes"]
    assert org.api.get("/v1/resources/tools").json() == tools
    org.api.create_key(scopes=["tools:audit"])


def test_removing_an_unused_action_works(org: Org) -> None:
    create_tools(org.api)
    org.api.create_key(scopes=["tools:deploy"])

    response = org.api.patch("/v1/resources/tools", json={"actions": ["deploy", "read"]})

    assert response.status_code == 200, response.text
    assert response.json()["actions"] == ["deploy", "read"]
    problem(
        org.api.post("/v1/keys", json={"name": "k", "scopes": ["tools:undeploy"]}), 422, "scopes[0]"
    )


def test_removing_an_action_still_granted_to_a_key_is_409_naming_the_key(org: Org) -> None:
    create_tools(org.api)
    key = org.api.create_key(scopes=["tools:undeploy"])

    body = problem(org.api.patch("/v1/resources/tools", json={"actions": ["deploy"]}), 409)

    assert key["id"] in body["detail"]
    assert org.api.get("/v1/resources/tools").json()["actions"] == ["deploy", "undeploy", "read"]


def test_removing_an_action_still_granted_to_an_app_is_409_naming_the_app(org: Org) -> None:
    create_tools(org.api)
    app = org.api.post("/v1/apps", json={"name": "ci", "scopes": ["tools:undeploy"]}).json()

    body = problem(org.api.patch("/v1/resources/tools", json={"actions": ["deploy"]}), 409)

    assert app["id"] in body["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": None}, "title"),
        ({"description": None}, "description"),
        ({"actions": None}, "actions"),
        ({"actions": []}, "actions"),
        ({"actions": ["deploy", "Bad"]}, "actions[1]"),
        ({"title": "   "}, "title"),
        ({"name": "renamed"}, "name"),
    ],
    ids=[
        "null-title",
        "null-description",
        "null-actions",
        "no-actions",
        "bad-action",
        "blank-title",
        "rename",
    ],
)
def test_an_invalid_resource_patch_is_422_naming_the_field(
    org: Org, body: dict[str, Any], field: str
) -> None:
    tools = create_tools(org.api)

    problem(org.api.patch("/v1/resources/tools", json=body), 422, field)
    assert org.api.get("/v1/resources/tools").json() == tools


# ---- each org has its own catalogue -------------------------------------------------------------


def test_each_org_has_its_own_catalogue(org: Org, other_org: Org) -> None:
    create_tools(org.api)

    assert "tools" not in catalogue(other_org.api)
    problem(other_org.api.get("/v1/resources/tools"), 404)
    problem(other_org.api.patch("/v1/resources/tools", json={"title": "Mine"}), 404)
    problem(other_org.api.delete("/v1/resources/tools"), 404)
    response = other_org.api.post("/v1/keys", json={"name": "k", "scopes": ["tools:deploy"]})
    problem(response, 422, "scopes[0]")
    assert org.api.get("/v1/resources/tools").status_code == 200


def test_another_org_may_define_a_resource_of_the_same_name_differently(
    org: Org, other_org: Org
) -> None:
    create_tools(org.api)

    theirs = create_resource(other_org.api, "tools", actions=["fly"])

    assert theirs["actions"] == ["fly"]
    assert catalogue(org.api)["tools"]["actions"] == ["deploy", "undeploy", "read"]
    problem(org.api.post("/v1/keys", json={"name": "k", "scopes": ["tools:fly"]}), 422, "scopes[0]")
    other_org.api.create_key(scopes=["tools:fly"])


# ---- authorization ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/v1/resources", "resources:read"),
        ("post", "/v1/resources", "resources:write"),
        ("get", "/v1/resources/tools", "resources:read"),
        ("patch", "/v1/resources/tools", "resources:write"),
        ("delete", "/v1/resources/tools", "resources:delete"),
    ],
)
def test_a_key_without_the_needed_scope_is_403_naming_it(
    org: Org, method: str, path: str, scope: str
) -> None:
    tools = create_tools(org.api)
    others = [s for s in ("resources:read", "resources:write", "resources:delete") if s != scope]
    caller = org.key_with(*others)
    kwargs: dict[str, Any] = {}
    if method == "post":
        kwargs["json"] = {"name": "models"}
    elif method == "patch":
        kwargs["json"] = {"title": "Renamed"}

    response = getattr(caller, method)(path, **kwargs)

    body = problem(response, 403)
    assert body["missing_scope"] == scope
    assert org.api.get("/v1/resources/tools").json() == tools
