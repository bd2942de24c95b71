"""The console's settings form shows and saves what a key reported leaked becomes."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from test_expiry_console import save
from test_signin import PASSWORD, Visitor, person

from conftest import Org, Server


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def test_the_settings_page_shows_disable_as_the_default(owner: Visitor) -> None:
    page = owner.get("/console/settings").text
    assert 'name="leaked_key_action"' in page
    assert re.search(r'<option value="disable" selected>', page)


def test_the_settings_form_saves_the_leaked_key_action(owner: Visitor, org: Org) -> None:
    assert save(owner, org, leaked_key_action="delete").status_code == 303
    assert org.api.get("/v1/org").json()["leaked_key_action"] == "delete"
    assert re.search(r'<option value="delete" selected>', owner.get("/console/settings").text)

    refused = save(owner, org, leaked_key_action="explode")
    assert refused.status_code == 422
    assert "leaked_key_action-error" in refused.text
    assert org.api.get("/v1/org").json()["leaked_key_action"] == "delete"

    # A form that does not send the field (from before it existed) leaves it as it is.
    assert save(owner, org).status_code == 303
    assert org.api.get("/v1/org").json()["leaked_key_action"] == "delete"
