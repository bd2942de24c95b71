"""The keys page over real HTTP: searching by name or id, filtering by environment, and the
scopes column; the settings page's list of what still has full access."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_signin import PASSWORD, Visitor, person

from conftest import Org, Server

ROW = re.compile(r'<tr data-key-id="(key_[0-9a-z]+)">(.*?)</tr>', re.S)


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def rows(response: httpx.Response) -> dict[str, str]:
    """Key id -> the HTML of its table row, in page order."""
    assert response.status_code == 200, response.text
    return dict(ROW.findall(response.text))


def listed(visitor: Visitor, **params: str) -> dict[str, str]:
    return rows(visitor.get(str(httpx.URL("/console/keys", params=params))))


# Names that make LIKE patterns go wrong when a search is not escaped.
NAMES = ("100% done", "100 done", "snake_case", "snakeXcase", "back\\slash", "slash/key", "Billing")


@pytest.fixture
def named_keys(org: Org) -> dict[str, str]:
    """Key id -> name, for a key of each name (and the org's owner key)."""
    made = {str(org.api.create_key(name=n)["id"]): n for n in NAMES}
    owner_key = org.api.get(f"/v1/keys/{org.owner_key_id}").json()
    return {**made, owner_key["id"]: owner_key["name"]}


def expected(keys: dict[str, str], q: str) -> set[str]:
    """The search's model: a name containing ``q`` or an id starting with it, any case."""
    term = q.strip().lower()
    return {i for i, name in keys.items() if term in name.lower() or i.startswith(term)}


@pytest.mark.parametrize(
    ("q", "names"),
    [
        ("100%", {"100% done"}),
        ("%", {"100% done"}),
        ("_", {"snake_case"}),
        ("snake_", {"snake_case"}),
        ("\\", {"back\\slash"}),
        ("/", {"slash/key"}),
        ("BILLING", {"Billing"}),
        ("  billing ", {"Billing"}),
        ("nothing like it", set()),
    ],
)
def test_searching_matches_names_literally_whatever_wildcards_they_hold(
    owner: Visitor, named_keys: dict[str, str], q: str, names: set[str]
) -> None:
    found = listed(owner, q=q)

    assert {named_keys[i] for i in found} == names


def test_searching_by_an_id_prefix_finds_that_key(
    owner: Visitor, named_keys: dict[str, str]
) -> None:
    key_id = next(i for i, name in named_keys.items() if name == "Billing")

    assert list(listed(owner, q=key_id)) == [key_id]
    assert key_id in listed(owner, q=key_id[:-3].upper())


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
# No "0": RequestGuard decodes a URL repeatedly, so a literal "%00" reads as NUL (a 400).
@given(q=st.text(alphabet="%_\\/ 1abcdeknoprsXy", max_size=6))
def test_the_search_agrees_with_its_model(
    owner: Visitor, named_keys: dict[str, str], q: str
) -> None:
    assert set(listed(owner, q=q)) == expected(named_keys, q)


def test_an_overlong_search_is_refused_beside_the_box(owner: Visitor) -> None:
    response = owner.get("/console/keys?q=" + "x" * 101)

    assert response.status_code == 200
    assert 'id="q-error"' in response.text
    assert "at most 100 characters" in response.text
    assert rows(response) == {}


def test_the_environment_filter_shows_only_that_environments_keys(org: Org, owner: Visitor) -> None:
    test_key = str(org.api.create_key(name="sandbox", environment="test")["id"])
    live_key = str(org.api.create_key(name="production")["id"])

    test_only = listed(owner, environment="test")
    live_only = listed(owner, environment="live")
    everything = listed(owner, environment="")

    assert list(test_only) == [test_key]
    assert test_key not in live_only
    assert live_key in live_only
    assert {test_key, live_key} <= set(everything)
    assert '<option value="test" selected>' in owner.get("/console/keys?environment=test").text


def test_filters_combine_and_the_pager_keeps_them(org: Org, owner: Visitor) -> None:
    made = [str(org.api.create_key(name=f"batch {n}", environment="test")["id"]) for n in range(26)]
    org.api.create_key(name="batch live")

    first = owner.get("/console/keys?q=batch&environment=test")
    following = re.search(r'<a rel="next" href="([^"]+)"', first.text)

    assert following is not None
    link = httpx.URL(following.group(1).replace("&amp;", "&"))
    assert link.params["q"] == "batch"
    assert link.params["environment"] == "test"
    second = listed(owner, **dict(link.params))
    assert set(rows(first)) | set(second) == set(made)


def test_the_scopes_column_says_full_access_plainly(org: Org, owner: Visitor) -> None:
    app = org.api.post("/v1/apps", json={"name": "reader", "scopes": ["apps:read"]}).json()
    four = ["apps:read", "api_keys:read", "users:read", "org:read"]
    scoped = str(org.api.create_key(scopes=four)["id"])
    in_app = str(org.api.create_key(app_id=app["id"])["id"])
    full = str(org.api.create_key()["id"])

    found = listed(owner)

    assert "FULL ACCESS" in found[full]
    assert "FULL ACCESS" in found[org.owner_key_id]
    assert "FULL ACCESS" not in found[scoped]
    assert "<code>api_keys:read</code>" in found[scoped]
    assert "+1 more" in found[scoped]  # four scopes, three shown
    assert "<code>apps:read</code>" in found[in_app]  # the app's scopes: what the key holds


def full_access_section(visitor: Visitor) -> str:
    response = visitor.get("/console/settings")
    assert response.status_code == 200, response.text
    match = re.search(r'<section class="card" id="full-access".*?</section>', response.text, re.S)
    assert match, response.text
    return match.group(0)


def test_settings_list_the_apps_and_keys_that_still_have_full_access(
    org: Org, owner: Visitor
) -> None:
    open_app = org.api.post("/v1/apps", json={"name": "legacy", "scopes": []}).json()
    scoped_app = org.api.post("/v1/apps", json={"name": "tidy", "scopes": ["apps:read"]}).json()
    in_open_app = str(org.api.create_key(name="legacy key", app_id=open_app["id"])["id"])
    narrowed = str(org.api.create_key(app_id=open_app["id"], scopes=["apps:read"])["id"])
    in_scoped_app = str(org.api.create_key(app_id=scoped_app["id"])["id"])
    explicit_star = str(org.api.create_key(name="star", scopes=["*"])["id"])
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})

    section = full_access_section(owner)

    assert f'href="/console/apps/{open_app["id"]}?tab=scopes"' in section
    assert scoped_app["id"] not in section
    for key_id in (in_open_app, explicit_star, org.owner_key_id):
        assert f'href="/console/keys?q={key_id}"' in section
    assert narrowed not in section
    assert in_scoped_app not in section


def test_narrowing_an_app_takes_it_and_its_keys_off_the_list(org: Org, owner: Visitor) -> None:
    app = org.api.post("/v1/apps", json={"name": "legacy", "scopes": []}).json()
    key_id = str(org.api.create_key(app_id=app["id"])["id"])
    assert key_id in full_access_section(owner)

    org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]})

    section = full_access_section(owner)
    assert app["id"] not in section
    assert key_id not in section


def test_an_expired_key_no_longer_counts_as_full_access(org: Org, owner: Visitor) -> None:
    expiry = (org.server.clock() + timedelta(seconds=2)).isoformat()
    key_id = str(org.api.create_key(expires_at=expiry)["id"])
    assert key_id in full_access_section(owner)

    org.server.clock.advance(timedelta(seconds=3))

    assert key_id not in full_access_section(owner)


def test_the_console_refuses_a_scopeless_key_into_an_open_app_under_the_policy(
    org: Org, owner: Visitor
) -> None:
    app = org.api.post("/v1/apps", json={"name": "legacy", "scopes": []}).json()
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})
    token = owner.csrf_token(f"/console/apps/{app['id']}")

    response = owner.post(
        f"/console/apps/{app['id']}/keys",
        {"csrf_token": token, "name": "sneaky", "expiration": "30"},
    )

    assert response.status_code == 422
    assert "requires explicit scopes" in response.text
    assert "kp_live_" not in response.text
    assert org.api.get(f"/v1/apps/{app['id']}").json()["key_count"] == 0


# --- rotation --------------------------------------------------------------------------------

SECRET = re.compile(r'id="client-secret" readonly value="(kp_[a-z]+_[0-9A-Za-z]+)"')


def _rotate(owner: Visitor, key_id: str, grace: str) -> httpx.Response:
    token = owner.csrf_token(f"/console/keys/{key_id}/edit")
    return owner.post(
        f"/console/keys/{key_id}/rotate", {"csrf_token": token, "grace_period_seconds": grace}
    )


def test_rotating_shows_the_new_secret_once_and_the_grace_in_the_table(
    org: Org, owner: Visitor
) -> None:
    old = org.api.create_key(name="rotating", scopes=["apps:read"])
    edit = owner.get(f"/console/keys/{old['id']}/edit")
    assert 'action="/console/keys/' in edit.text
    assert 'name="grace_period_seconds"' in edit.text

    response = _rotate(owner, str(old["id"]), "3600")

    assert response.status_code == 201, response.text
    [secret] = SECRET.findall(response.text)
    assert org.api.verify(secret)["code"] == "VALID"
    assert org.api.verify(str(old["key"]))["code"] == "VALID"
    assert "keeps working until" in response.text
    row = listed(owner, q=str(old["id"]))[str(old["id"])]
    assert "Grace" in row
    new_id = org.api.get(f"/v1/keys/{old['id']}").json()["rotated_to"]
    assert "Grace" not in listed(owner, q=new_id)[new_id]


def test_a_rotated_keys_page_shows_its_successor_and_use_since_rotation(
    org: Org, owner: Visitor
) -> None:
    old = org.api.create_key(name="rotated", scopes=["apps:read"])
    assert _rotate(owner, str(old["id"]), "86400").status_code == 201
    org.api.verify(str(old["key"]))
    org.server.kp.usage.flush()
    new_id = org.api.get(f"/v1/keys/{old['id']}").json()["rotated_to"]

    page = owner.get(f"/console/keys/{old['id']}/edit")

    assert page.status_code == 200
    assert f'href="/console/keys/{new_id}/edit"' in page.text
    assert re.search(r'id="uses-since-rotation">[01]<', page.text)  # 1 once the batch is in
    assert 'id="rotate"' not in page.text  # rotated once, never again


def test_rotating_again_is_a_409_naming_the_successor(org: Org, owner: Visitor) -> None:
    old = org.api.create_key(name="twice", scopes=["apps:read"])
    token = owner.csrf_token(f"/console/keys/{old['id']}/edit")
    first = owner.post(
        f"/console/keys/{old['id']}/rotate", {"csrf_token": token, "grace_period_seconds": "0"}
    )
    assert first.status_code == 201
    new_id = org.api.get(f"/v1/keys/{old['id']}").json()["rotated_to"]

    again = owner.post(
        f"/console/keys/{old['id']}/rotate", {"csrf_token": token, "grace_period_seconds": "0"}
    )

    assert again.status_code == 409
    assert new_id in again.text
    assert "has stopped working" in first.text


@pytest.mark.parametrize("grace", ["", "soon", "-1", "2592001"])
def test_a_bad_grace_is_refused_beside_its_select(org: Org, owner: Visitor, grace: str) -> None:
    old = org.api.create_key(name="bad grace", scopes=["apps:read"])

    response = _rotate(owner, str(old["id"]), grace)

    assert response.status_code == 422
    assert 'id="grace_period_seconds-error"' in response.text
    assert org.api.get(f"/v1/keys/{old['id']}").json()["rotated_to"] is None
