"""The console's permission presets: the page beside the catalogue (list, create, edit,
delete), and "Start from a preset" in the create-key and create-app forms without
JavaScript (test_browser_presets.py drives the grid filling with it)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from test_signin import PASSWORD, Visitor, person

from conftest import Org, Server

PRESETS = "/console/resources/presets"


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def preset(org: Org, name: str, scopes: list[str]) -> dict[str, Any]:
    response = org.api.post("/v1/presets", json={"name": name, "scopes": scopes})
    assert response.status_code == 201, response.text
    made: dict[str, Any] = response.json()
    return made


def post(visitor: Visitor, path: str, **fields: Any) -> Any:
    form = {"csrf_token": visitor.csrf_token(), **fields}
    return visitor.post(path, form)


def key_named(org: Org, name: str) -> dict[str, Any]:
    [key] = [k for k in org.api.get("/v1/keys?limit=100").json()["data"] if k["name"] == name]
    return dict(key)


def created_event(org: Org, action: str, target: str) -> dict[str, Any]:
    data = org.api.get(f"/v1/audit-events?action={action}").json()["data"]
    [event] = [e for e in data if e["target"]["id"] == target]
    return dict(event)


# ---- the presets page --------------------------------------------------------------------------


def test_an_owner_creates_edits_and_deletes_a_preset_from_the_console(
    owner: Visitor, org: Org
) -> None:
    form = owner.get(f"{PRESETS}/new")
    assert form.status_code == 200
    assert 'name="scope" value="apps:read"' in form.text

    created = post(owner, f"{PRESETS}/new", name="Dashboard", scope=["apps:read", "audit:read"])

    assert created.status_code == 303
    assert created.headers["location"] == f"{PRESETS}?notice=created"
    [made] = org.api.get("/v1/presets").json()["data"]
    assert made["scopes"] == ["apps:read", "audit:read"]
    listing = owner.get(PRESETS).text
    assert f'data-preset-id="{made["id"]}"' in listing
    assert 'aria-current="page">Permission presets' in listing

    edited = post(owner, f"{PRESETS}/{made['id']}/edit", name="Dashboard", scope="apps:*")
    assert edited.status_code == 303
    assert org.api.get(f"/v1/presets/{made['id']}").json()["scopes"] == ["apps:*"]

    assert post(owner, f"{PRESETS}/{made['id']}/delete").status_code == 303
    assert org.api.get("/v1/presets").json()["data"] == []


def test_a_preset_form_with_no_permission_or_a_taken_name_says_why(
    owner: Visitor, org: Org
) -> None:
    preset(org, "taken", ["apps:read"])

    empty = post(owner, f"{PRESETS}/new", name="empty")
    taken = post(owner, f"{PRESETS}/new", name="taken", scope="apps:read")

    assert empty.status_code == 422
    assert 'id="scopes-error"' in empty.text
    assert taken.status_code == 409
    assert "already exists" in html.unescape(taken.text)


def test_the_resources_page_leads_to_the_presets(owner: Visitor) -> None:
    page = owner.get("/console/resources").text
    assert f'href="{PRESETS}"' in page


def test_a_viewer_reads_presets_but_is_offered_no_change(server: Server, org: Org) -> None:
    preset(org, "readable", ["apps:read"])
    viewer = Visitor(server)
    assert viewer.sign_in(person(org, "viewer"), PASSWORD).status_code == 303
    try:
        page = viewer.get(PRESETS)
        assert page.status_code == 200
        assert "readable" in page.text
        assert f"{PRESETS}/new" not in page.text
        assert "data-open-dialog" not in page.text
    finally:
        viewer.close()


# ---- "Start from a preset" without JavaScript ----------------------------------------------


def test_the_create_forms_offer_the_presets_with_their_scopes(owner: Visitor, org: Org) -> None:
    made = preset(org, "Model reader", ["apps:read", "audit:read"])

    for path in ("/console/keys/new", "/console/apps/new"):
        page = owner.get(path).text
        option = re.search(rf'<option value="{made["id"]}"[^>]*>', page)
        assert option is not None, path
        assert 'data-scopes="apps:read audit:read"' in option.group(0)


def test_a_chosen_preset_and_an_untouched_grid_make_the_key_from_the_preset(
    owner: Visitor, org: Org
) -> None:
    made = preset(org, "Model reader", ["apps:read", "audit:read"])

    response = post(owner, "/console/keys", name="from preset", expiration="30", preset=made["id"])

    assert response.status_code == 201, response.text
    key = key_named(org, "from preset")
    assert key["scopes"] == ["apps:read", "audit:read"]
    event = created_event(org, "key.create", key["id"])
    assert event["details"]["preset"] == {"id": made["id"], "name": "Model reader"}


def test_a_grid_ticked_as_the_preset_still_names_the_preset(owner: Visitor, org: Org) -> None:
    """What the browser sends once console.js has filled the grid."""
    made = preset(org, "keys", ["api_keys:*"])

    response = post(
        owner,
        "/console/keys",
        name="filled",
        expiration="30",
        preset=made["id"],
        scope=["api_keys:*", "api_keys:read", "api_keys:write", "api_keys:delete"],
    )

    assert response.status_code == 201, response.text
    key = key_named(org, "filled")
    assert key["scopes"] == ["api_keys:*"]
    assert created_event(org, "key.create", key["id"])["details"]["preset"]["id"] == made["id"]


def test_a_preset_and_a_different_grid_are_refused_naming_the_preset(
    owner: Visitor, org: Org
) -> None:
    made = preset(org, "reader", ["apps:read"])

    response = post(
        owner, "/console/keys", name="both", expiration="30", preset=made["id"], scope="audit:read"
    )

    assert response.status_code == 422
    assert 'id="preset-error"' in response.text
    assert "differ from the “reader” preset" in html.unescape(response.text)
    assert [k for k in org.api.get("/v1/keys").json()["data"] if k["name"] == "both"] == []


def test_an_app_starts_from_a_preset_too(owner: Visitor, org: Org) -> None:
    made = preset(org, "reader", ["apps:read", "audit:read"])

    response = post(owner, "/console/apps", name="dashboards", preset=made["id"])

    assert response.status_code == 303, response.text
    [app] = org.api.get("/v1/apps").json()["data"]
    assert app["scopes"] == ["apps:read", "audit:read"]
    assert created_event(org, "app.create", app["id"])["details"]["preset"]["name"] == "reader"
