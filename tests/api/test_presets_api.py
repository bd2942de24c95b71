"""/v1/presets: named scope sets keys and apps start from. A preset is a template: what is
made from it holds a copy of its scopes, checked as if they were typed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from conftest import Api, Org
from support import problem

PRESET_FIELDS = {"id", "name", "description", "scopes", "created_by", "created_at", "updated_at"}
SCANNER = ["models:read", "models:write", "scanner:write"]


def with_catalogue(org: Org) -> None:
    """The resources the seeds' "Model scanner CLI" needs."""
    for name, actions in (("models", ["read", "write", "deploy"]), ("scanner", ["write"])):
        response = org.api.post("/v1/resources", json={"name": name, "actions": actions})
        assert response.status_code == 201, response.text


def create_preset(api: Api, name: str = "Model scanner CLI", **body: Any) -> dict[str, Any]:
    body.setdefault("scopes", SCANNER)
    response = api.post("/v1/presets", json={"name": name, **body})
    assert response.status_code == 201, response.text
    preset: dict[str, Any] = response.json()
    return preset


def events(api: Api, action: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = api.get(f"/v1/audit-events?action={action}").json()["data"]
    return data


# ---- create, read, list ----------------------------------------------------------------------


def test_creating_a_preset_answers_201_with_every_field_and_is_audited(org: Org) -> None:
    with_catalogue(org)

    preset = create_preset(org.api, description="Supply chain CLI in hybrid mode")

    assert set(preset) == PRESET_FIELDS
    assert preset["id"].startswith("pst_")
    assert preset["scopes"] == SCANNER
    assert preset["created_by"] == org.owner_key_id
    assert datetime.fromisoformat(preset["updated_at"]) == datetime.fromisoformat(
        preset["created_at"]
    )
    assert org.api.get(f"/v1/presets/{preset['id']}").json() == preset
    [event] = events(org.api, "preset.create")
    assert event["target"]["id"] == preset["id"]
    assert event["details"]["scopes"] == SCANNER


def test_the_list_is_cursor_paginated_newest_first(org: Org) -> None:
    made = [create_preset(org.api, f"p{i}", scopes=["apps:read"])["id"] for i in range(3)]

    first = org.api.get("/v1/presets?limit=2").json()
    second = org.api.get(f"/v1/presets?limit=2&cursor={first['next_cursor']}").json()

    assert [p["id"] for p in first["data"] + second["data"]] == made[::-1]
    assert second["next_cursor"] is None
    problem(org.api.get("/v1/presets?cursor=app_nope"), 422, "cursor")


def test_a_duplicate_name_is_a_409_naming_it(org: Org) -> None:
    create_preset(org.api, "dashboard", scopes=["analytics:read"])

    problem(org.api.post("/v1/presets", json={"name": "dashboard", "scopes": ["audit:read"]}), 409)
    other = create_preset(org.api, "other", scopes=["audit:read"])
    problem(org.api.patch(f"/v1/presets/{other['id']}", json={"name": "dashboard"}), 409)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "scopes": []}, "scopes"),
        ({"name": "x"}, "scopes"),
        ({"name": "x", "scopes": ["nothing:read"]}, "scopes[0]"),
        ({"name": "x", "scopes": ["apps:fly"]}, "scopes[0]"),
        ({"name": "   ", "scopes": ["apps:read"]}, "name"),
        ({"name": "x", "scopes": ["apps:read"], "key_count": 1}, "key_count"),
    ],
)
def test_invalid_presets_are_a_422_naming_the_field(
    org: Org, body: dict[str, Any], field: str
) -> None:
    problem(org.api.post("/v1/presets", json=body), 422, field)


def test_saving_a_preset_needs_the_scopes_it_holds(org: Org) -> None:
    narrow = org.key_with("resources:read", "resources:write", "apps:read")

    problem(narrow.post("/v1/presets", json={"name": "all", "scopes": ["*"]}), 403, "scopes")
    mine = create_preset(narrow, "mine", scopes=["apps:read"])
    theirs = create_preset(org.api, "theirs", scopes=["api_keys:*"])
    # A rename is held too: it could relabel scopes the caller lacks.
    problem(narrow.patch(f"/v1/presets/{theirs['id']}", json={"name": "Read-only"}), 403)
    problem(narrow.patch(f"/v1/presets/{mine['id']}", json={"scopes": ["*"]}), 403, "scopes")
    assert narrow.delete(f"/v1/presets/{theirs['id']}").status_code == 403  # no resources:delete
    assert org.api.get(f"/v1/presets/{theirs['id']}").json()["name"] == "theirs"


def test_update_and_delete_are_audited_and_another_orgs_preset_is_a_404(
    org: Org, other_org: Org
) -> None:
    preset = create_preset(org.api, "ci", scopes=["apps:read"])

    changed = org.api.patch(
        f"/v1/presets/{preset['id']}", json={"scopes": ["apps:read", "apps:write"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["scopes"] == ["apps:read", "apps:write"]
    [event] = events(org.api, "preset.update")
    assert event["changes"]["scopes"] == {
        "before": ["apps:read"],
        "after": ["apps:read", "apps:write"],
    }
    problem(other_org.api.get(f"/v1/presets/{preset['id']}"), 404)
    problem(other_org.api.delete(f"/v1/presets/{preset['id']}"), 404)
    assert org.api.delete(f"/v1/presets/{preset['id']}").status_code == 204
    problem(org.api.get(f"/v1/presets/{preset['id']}"), 404)
    assert [e["target"]["id"] for e in events(org.api, "preset.delete")] == [preset["id"]]


# ---- keys and apps made from a preset ---------------------------------------------------------


def test_a_key_made_from_a_preset_holds_a_copy_of_its_scopes(org: Org) -> None:
    with_catalogue(org)
    preset = create_preset(org.api)

    by_name = org.api.create_key(name="scanner", preset="Model scanner CLI")
    by_id = org.api.create_key(name="scanner 2", preset=preset["id"])

    assert by_name["scopes"] == by_id["scopes"] == SCANNER
    assert by_name["preset"] == {"id": preset["id"], "name": "Model scanner CLI"}
    assert "preset" not in org.api.get(f"/v1/keys/{by_name['id']}").json()
    [event] = [e for e in events(org.api, "key.create") if e["target"]["id"] == by_name["id"]]
    assert event["details"]["preset"] == {"id": preset["id"], "name": "Model scanner CLI"}
    # A template: changing or deleting the preset reaches no key made from it.
    org.api.patch(f"/v1/presets/{preset['id']}", json={"scopes": ["models:read"]})
    org.api.delete(f"/v1/presets/{preset['id']}")
    assert org.api.get(f"/v1/keys/{by_name['id']}").json()["scopes"] == SCANNER


def test_a_key_without_a_preset_answers_preset_null(org: Org) -> None:
    made = org.api.create_key(name="plain", scopes=["apps:read"])
    assert made["preset"] is None


@pytest.mark.parametrize("path", ["/v1/keys", "/v1/apps"])
def test_a_preset_with_scopes_or_an_unknown_preset_is_a_422_naming_preset(
    org: Org, path: str
) -> None:
    create_preset(org.api, "reader", scopes=["apps:read"])

    both = org.api.post(path, json={"name": "both", "preset": "reader", "scopes": ["apps:read"]})
    problem(both, 422, "preset")
    problem(org.api.post(path, json={"name": "unknown", "preset": "nope"}), 422, "preset")


def test_another_orgs_preset_is_unknown(org: Org, other_org: Org) -> None:
    theirs = create_preset(other_org.api, "theirs", scopes=["apps:read"])
    problem(org.api.post("/v1/keys", json={"name": "k", "preset": theirs["id"]}), 422, "preset")


def test_using_a_preset_is_checked_like_typing_its_scopes(org: Org) -> None:
    create_preset(org.api, "keys admin", scopes=["api_keys:*", "apps:*"])
    narrow = org.key_with("api_keys:write", "api_keys:read", "apps:write")

    problem(narrow.post("/v1/keys", json={"name": "k", "preset": "keys admin"}), 403, "scopes")
    problem(narrow.post("/v1/apps", json={"name": "a", "preset": "keys admin"}), 403, "scopes")


def test_an_app_made_from_a_preset_holds_a_copy_and_the_audit_names_it(org: Org) -> None:
    preset = create_preset(org.api, "reader", scopes=["apps:read", "audit:read"])

    response = org.api.post("/v1/apps", json={"name": "dash", "preset": "reader"})

    assert response.status_code == 201, response.text
    assert response.json()["scopes"] == ["apps:read", "audit:read"]
    [event] = events(org.api, "app.create")
    assert event["details"]["preset"] == {"id": preset["id"], "name": "reader"}


def test_a_resource_a_preset_names_cannot_be_deleted_until_the_preset_lets_go(org: Org) -> None:
    """As for apps and keys granted one of its actions (services/resources.py)."""
    with_catalogue(org)
    preset = create_preset(org.api)

    refused = problem(org.api.delete("/v1/resources/scanner"), 409)
    assert f"preset {preset['id']}" in refused["detail"]
    narrowed = org.api.patch("/v1/resources/models", json={"actions": ["read", "deploy"]})
    problem(narrowed, 409, "actions")

    org.api.patch(f"/v1/presets/{preset['id']}", json={"scopes": ["models:read"]})
    assert org.api.delete("/v1/resources/scanner").status_code == 204
