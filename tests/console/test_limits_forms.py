"""Limits in the console: the key create and edit forms (rate limits, quota, allowlist),
the app's and the organization's default rate limits, and the key page's remaining/reset."""

from __future__ import annotations

import re
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


def _key_by_name(org: Org, name: str) -> dict[str, object]:
    keys = org.api.get("/v1/keys", params={"limit": 200}).json()["data"]
    found: dict[str, object] = next(k for k in keys if k["name"] == name)
    return found


def test_a_key_is_created_with_limits_from_the_form(owner: Visitor, org: Org) -> None:
    token = owner.csrf_token("/console/keys/new")
    response = owner.post(
        "/console/keys",
        {
            "csrf_token": token,
            "name": "limited",
            "expiration": "30",
            "environment": "live",
            "ratelimits": "burst 20 1\ndaily 10000 86400",
            "quota_remaining": "1000",
            "quota_refill_interval": "monthly",
            "quota_refill_amount": "1000",
            "quota_refill_day": "31",
            "ip_allowlist": "203.0.113.0/24\n2001:db8::1",
        },
    )
    assert response.status_code == 201, response.text
    key = _key_by_name(org, "limited")
    assert key["ratelimits"] == [
        {"name": "burst", "limit": 20, "period_seconds": 1},
        {"name": "daily", "limit": 10000, "period_seconds": 86400},
    ]
    assert key["quota"] == {
        "remaining": 1000,
        "refill": {"amount": 1000, "interval": "monthly", "day_of_month": 31},
    }
    assert key["ip_allowlist"] == ["203.0.113.0/24", "2001:db8::1"]


@pytest.mark.parametrize(
    ("field", "value", "says"),
    [
        ("ratelimits", "burst twenty 1", "Line 1: “burst twenty 1”: write name, limit, period"),
        ("ratelimits", "burst 20 1\nburst 5 1", "Line 2 (name): duplicates the rate limit"),
        ("ip_allowlist", "example.com", "Line 1: must be an IPv4 or IPv6 address"),
        ("quota_remaining", "lots", "Quota remaining: must be a whole number"),
    ],
)
def test_bad_limits_are_shown_at_their_input(
    owner: Visitor, field: str, value: str, says: str
) -> None:
    token = owner.csrf_token("/console/keys/new")
    response = owner.post(
        "/console/keys",
        {"csrf_token": token, "name": "bad", "expiration": "30", field: value},
    )
    assert response.status_code == 422
    assert says in response.text
    assert 'aria-invalid="true"' in response.text


def test_the_key_page_shows_remaining_and_reset_and_edits_the_limits(
    owner: Visitor, org: Org
) -> None:
    created = org.api.create_key(
        name="edited",
        ratelimits=[{"name": "minute", "limit": 3, "period_seconds": 60}],
        quota={"remaining": 10},
    )
    verifier = org.key_with("keys:verify")
    verifier.post("/v1/keys/verify", json={"key": created["key"]})
    page = owner.get(f"/console/keys/{created['id']}/edit")
    assert page.status_code == 200
    assert re.search(r"2 of 3 left per 60 s; whole again in 20 s", page.text)
    assert re.search(r'id="quota-remaining">9<', page.text)

    token = owner.csrf_token(f"/console/keys/{created['id']}/edit")
    base = {
        "csrf_token": token,
        "status": "active",
        "ratelimits": "minute 5 60",
        "ip_allowlist": "10.0.0.0/8",
        "quota_remaining": "9",
        "quota_refill_interval": "none",
        "quota_refill_day": "1",
    }
    # The quota as shown is left alone (a status change never resets a spent count).
    assert owner.post(f"/console/keys/{created['id']}/edit", base).status_code == 303
    key = org.api.get(f"/v1/keys/{created['id']}").json()
    assert key["ratelimits"] == [{"name": "minute", "limit": 5, "period_seconds": 60}]
    assert (key["ip_allowlist"], key["quota"]["remaining"]) == (["10.0.0.0/8"], 9)
    added = owner.post(f"/console/keys/{created['id']}/edit", {**base, "quota_add": "5"})
    assert added.status_code == 303
    assert org.api.get(f"/v1/keys/{created['id']}").json()["quota"]["remaining"] == 14
    removed = owner.post(
        f"/console/keys/{created['id']}/edit", {**base, "quota_remaining": "", "ratelimits": ""}
    )
    assert removed.status_code == 303
    key = org.api.get(f"/v1/keys/{created['id']}").json()
    assert (key["quota"], key["ratelimits"]) == (None, [])


def test_apps_and_the_organization_take_default_rate_limits(owner: Visitor, org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "defaults"}).json()
    token = owner.csrf_token(f"/console/apps/{app['id']}")
    response = owner.post(
        f"/console/apps/{app['id']}/ratelimits",
        {"csrf_token": token, "ratelimits": "hour 100 3600"},
    )
    assert response.status_code == 303
    assert org.api.get(f"/v1/apps/{app['id']}").json()["ratelimits"] == [
        {"name": "hour", "limit": 100, "period_seconds": 3600}
    ]
    assert "hour 100 3600" in owner.get(f"/console/apps/{app['id']}").text
    bad = owner.post(
        f"/console/apps/{app['id']}/ratelimits", {"csrf_token": token, "ratelimits": "hour 0 1"}
    )
    assert bad.status_code == 422
    assert "Line 1 (limit): must be between 1 and" in bad.text

    settings = owner.get("/console/settings")
    org_now = org.api.get("/v1/org").json()
    response = owner.post(
        "/console/settings",
        {
            "csrf_token": token,
            "name": org_now["name"],
            "expiry_warning_days": "7, 1",
            "expired_key_retention_days": "0",
            "ratelimits": "daily 100000 86400",
        },
    )
    assert settings.status_code == 200
    assert response.status_code == 303, response.text
    assert org.api.get("/v1/org").json()["ratelimits"] == [
        {"name": "daily", "limit": 100000, "period_seconds": 86400}
    ]
    assert "daily 100000 86400" in owner.get("/console/settings").text
