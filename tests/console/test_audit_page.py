"""The console's audit log page over real HTTP: events newest first with a readable change
summary, the API's filters, an error naming a filter that cannot match, pages, and the
links from a key's and an app's page."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from test_signin import PASSWORD, Visitor, person

from keyplane.console.routes.audit import PAGE_SIZE

from conftest import Org, Server

ROW = re.compile(r'<tr data-event-id="(evt_[0-9a-z]+)">(.*?)</tr>', re.S)


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def page(visitor: Visitor, **params: str) -> httpx.Response:
    return visitor.get(str(httpx.URL("/console/audit", params=params)))


def rows(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [html for _, html in ROW.findall(response.text)]


def test_an_update_reads_as_what_changed_from_what(owner: Visitor, org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "billing"}).json()
    org.api.patch(f"/v1/apps/{app['id']}", json={"description": "Invoices"})
    [row] = rows(page(owner, action="app.update"))
    assert "description: “” → “Invoices”" in row
    assert "billing" in row
    assert "127.0.0.1" in row


def test_filters_narrow_the_table_as_in_the_api(owner: Visitor, org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "billing"}).json()
    org.api.delete(f"/v1/apps/{app['id']}")
    assert len(rows(page(owner, target_id=app["id"]))) == 2
    assert len(rows(page(owner, action="app.delete"))) == 1
    assert len(rows(page(owner, action="app.", actor_id=org.owner_key_id))) == 2
    assert rows(page(owner, **{"from": "2999-01-01T00:00"})) == []


@pytest.mark.parametrize(
    ("params", "field"),
    [({"action": "key.explode"}, "action"), ({"from": "soon"}, "from")],
)
def test_a_filter_that_cannot_match_is_named_on_the_page(
    owner: Visitor, params: dict[str, str], field: str
) -> None:
    response = page(owner, **params)
    assert response.status_code == 422
    assert f'data-field="{field}"' in response.text


def test_older_events_are_a_page_away(owner: Visitor, org: Org) -> None:
    for n in range(PAGE_SIZE + 1):
        org.api.post("/v1/apps", json={"name": f"app {n}"})
    first = page(owner, action="app.create")
    assert len(rows(first)) == PAGE_SIZE
    older = re.search(r'<a rel="next" href="([^"]+)"', first.text)
    assert older is not None
    second = owner.get(older.group(1).replace("&amp;", "&"))
    assert len(rows(second)) == 1
    assert "action=app.create" in older.group(1)  # the filters stay on


def test_a_keys_and_an_apps_page_link_to_their_events(owner: Visitor, org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "billing"}).json()
    app_page = owner.get(f"/console/apps/{app['id']}")
    assert f'href="/console/audit?target_id={app["id"]}"' in app_page.text
    key_page = owner.get(f"/console/keys/{org.owner_key_id}/edit")
    assert f'href="/console/audit?target_id={org.owner_key_id}"' in key_page.text
