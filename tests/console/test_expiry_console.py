"""The console's expiry settings and badges over real HTTP: the settings form's three lifecycle
fields, and "expires soon" / "rotation due" on the keys table and a key's page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from test_signin import PASSWORD, Visitor, form_token, person

from conftest import Org, Server

ROW = re.compile(r'<tr data-key-id="(key_[0-9a-z]+)">(.*?)</tr>', re.S)
SOON = "EXPIRES SOON"
DUE = "ROTATION DUE"


@pytest.fixture
def owner(server: Server, org: Org) -> Iterator[Visitor]:
    visitor = Visitor(server)
    assert visitor.sign_in(person(org, "owner"), PASSWORD).status_code == 303
    yield visitor
    visitor.close()


def rows(visitor: Visitor) -> dict[str, str]:
    response = visitor.get("/console/keys")
    assert response.status_code == 200, response.text
    return dict(ROW.findall(response.text))


def save(visitor: Visitor, org: Org, **fields: str) -> httpx.Response:
    current = org.api.get("/v1/org").json()
    data = {
        "csrf_token": form_token(visitor.get("/console/settings")),
        "name": current["name"],
        "max_key_lifetime_days": "",
        "expired_key_retention_days": str(current["expired_key_retention_days"]),
        "expiry_warning_days": ", ".join(map(str, current["expiry_warning_days"])),
        "rotation_period_days": str(current["rotation_period_days"] or ""),
        **fields,
    }
    return visitor.post("/console/settings", data)


def test_the_settings_page_shows_the_lifecycle_defaults(owner: Visitor) -> None:
    page = owner.get("/console/settings").text

    assert 'name="expiry_warning_days"' in page
    assert 'value="7, 1"' in page
    assert re.search(r'name="expired_key_retention_days"[^>]*value="0"', page)
    assert re.search(r'name="rotation_period_days"[^>]*value=""', page)


def test_the_settings_form_saves_the_lifecycle_settings(owner: Visitor, org: Org) -> None:
    response = save(
        owner,
        org,
        expiry_warning_days="1 14,3",
        expired_key_retention_days="30",
        rotation_period_days="90",
    )

    assert response.status_code == 303, response.text
    saved = org.api.get("/v1/org").json()
    assert saved["expiry_warning_days"] == [14, 3, 1]
    assert saved["expired_key_retention_days"] == 30
    assert saved["rotation_period_days"] == 90
    assert 'value="14, 3, 1"' in owner.get("/console/settings").text

    assert save(owner, org, expiry_warning_days="", rotation_period_days="").status_code == 303
    saved = org.api.get("/v1/org").json()
    assert (saved["expiry_warning_days"], saved["rotation_period_days"]) == ([], None)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("expiry_warning_days", "7, soon"),
        ("expiry_warning_days", "7, 7"),
        ("expiry_warning_days", "400"),
        ("expiry_warning_days", "1, 2, 3, 4, 5, 6"),
        ("expired_key_retention_days", "-1"),
        ("expired_key_retention_days", "99999"),
        ("rotation_period_days", "0"),
        ("rotation_period_days", "a month"),
    ],
)
def test_a_wrong_lifecycle_setting_is_shown_beside_its_field(
    owner: Visitor, org: Org, field: str, value: str
) -> None:
    before = org.api.get("/v1/org").json()

    response = save(owner, org, **{field: value})

    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    assert f'value="{value}"' in response.text  # what was typed stays in the box
    assert org.api.get("/v1/org").json() == before


def test_a_key_expiring_within_the_first_threshold_is_marked_expires_soon(
    org: Org, owner: Visitor
) -> None:
    soon = str(org.api.create_key(name="soon", expires_in_days=3)["id"])
    later = str(org.api.create_key(name="later", expires_in_days=30)["id"])

    found = rows(owner)

    assert SOON in found[soon]
    assert SOON not in found[later]
    assert SOON not in found[org.owner_key_id]
    assert SOON in owner.get(f"/console/keys/{soon}/edit").text

    org.api.patch("/v1/org", json={"expiry_warning_days": []})
    assert SOON not in rows(owner)[soon]
    org.api.patch("/v1/org", json={"expiry_warning_days": [30]})
    assert SOON in rows(owner)[later]


def test_a_key_rotated_out_is_not_marked(org: Org, owner: Visitor) -> None:
    old = str(org.api.create_key(name="old")["id"])
    org.api.post(f"/v1/keys/{old}/rotate", json={"grace_period_seconds": 3600})

    assert SOON not in rows(owner)[old]


def test_a_key_older_than_the_rotation_period_is_marked_rotation_due(
    org: Org, owner: Visitor, server: Server
) -> None:
    org.api.patch("/v1/org", json={"rotation_period_days": 1})
    assert DUE not in rows(owner)[org.owner_key_id]

    org.server.clock.advance(timedelta(days=1, seconds=1))

    later = Visitor(server)  # the first session has ended meanwhile
    try:
        assert later.sign_in(person(org, "owner"), PASSWORD).status_code == 303
        assert DUE in rows(later)[org.owner_key_id]
        assert DUE in later.get(f"/console/keys/{org.owner_key_id}/edit").text
    finally:
        later.close()
