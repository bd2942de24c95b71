"""The console's key page lists the keys it delegated to, with links both ways."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from test_signin import PASSWORD, Visitor, person

from conftest import Org, Server


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def test_a_keys_page_lists_its_children_and_a_childs_page_links_its_parent(
    org: Org, owner: Visitor
) -> None:
    parent = org.api.create_key(name="job runner", scopes=["apps:read"])
    as_parent = org.api.as_key(str(parent["key"]))
    made = [
        as_parent.post(f"/v1/keys/{parent['id']}/children", json={"name": name}).json()
        for name in ("nightly <export>", "agent")
    ]

    page = owner.get(f"/console/keys/{parent['id']}/edit")

    assert page.status_code == 200
    assert 'id="children"' in page.text
    for child in made:
        assert f'href="/console/keys/{child["id"]}/edit"' in page.text
        assert child["key"] not in page.text
    assert "nightly &lt;export&gt;" in page.text  # escaped like every name
    child_page = owner.get(f"/console/keys/{made[0]['id']}/edit")
    assert child_page.status_code == 200
    assert f'href="/console/keys/{parent["id"]}/edit"' in child_page.text
    assert 'id="rotate"' not in child_page.text  # a delegated key is not rotated
    assert 'id="children"' not in child_page.text  # none of its own yet


def test_a_key_without_children_shows_no_children_section(org: Org, owner: Visitor) -> None:
    lone = org.api.create_key(name="lone", scopes=["apps:read"])
    page = owner.get(f"/console/keys/{lone['id']}/edit")
    assert page.status_code == 200
    assert 'id="children"' not in page.text
