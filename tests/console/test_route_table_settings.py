"""The route table on the console's settings page: shown one rule per line, saved from the
form, and a bad line refused in place (422) with the line and the field named."""

from __future__ import annotations

import html
from collections.abc import Iterator

import httpx
import pytest
from test_signin import PASSWORD, Visitor, person

from conftest import Org, Server


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def _save(owner: Visitor, org: Org, table: str) -> httpx.Response:
    token = owner.csrf_token("/console/settings")
    return owner.post(
        "/console/settings",
        {
            "csrf_token": token,
            "name": org.api.get("/v1/org").json()["name"],
            "expiry_warning_days": "7, 1",
            "expired_key_retention_days": "0",
            "route_table": table,
        },
    )


def test_the_route_table_is_saved_from_the_form_and_shown_again(owner: Visitor, org: Org) -> None:
    response = _save(owner, org, "GET /apps/** apps:read\n\n* /status\nPOST /apps/* apps:write")

    assert response.status_code == 303, response.text
    assert org.api.get("/v1/org").json()["route_table"] == [
        {"method": "GET", "path": "/apps/**", "scopes": ["apps:read"]},
        {"method": "*", "path": "/status", "scopes": []},
        {"method": "POST", "path": "/apps/*", "scopes": ["apps:write"]},
    ]
    page = html.unescape(owner.get("/console/settings").text)
    assert "GET /apps/** apps:read\n* /status\nPOST /apps/* apps:write</textarea>" in page


@pytest.mark.parametrize(
    ("table", "says"),
    [
        ("GET /a apps:read\nFETCH /b", "Line 2 (method): must be one of GET"),
        ("GET a/b", "Line 1 (path): must be a path starting with /"),
        ("GET /a/../b", "Line 1 (path): must not contain . or .. segments"),
        ("GET /a nothing:read", "Line 1 (scopes[0]): unknown resource"),
        ("GET", "Line 1: “GET”: write a method, a path, scopes"),
    ],
)
def test_a_bad_line_is_refused_in_place(owner: Visitor, org: Org, table: str, says: str) -> None:
    before = org.api.get("/v1/org").json()["route_table"]

    response = _save(owner, org, table)

    assert response.status_code == 422
    page = html.unescape(response.text)
    assert says in page
    assert f">{table}</textarea>" in page  # what was typed stays, to be corrected
    assert 'id="route_table-error"' in page
    assert org.api.get("/v1/org").json()["route_table"] == before
