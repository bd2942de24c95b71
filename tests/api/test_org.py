"""/v1/org: the caller's organization and its key policies."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from conftest import Org
from support import problem

ORG_FIELDS = {
    "id",
    "name",
    "require_explicit_scopes",
    "max_key_lifetime_days",
    "expired_key_retention_days",
    "expiry_warning_days",
    "rotation_period_days",
    "created_at",
    "updated_at",
    "ratelimits",
    "leaked_key_action",
    "route_table",
}


def on_server_clock(org: Org, expiry: dict[str, Any]) -> dict[str, Any]:
    """``expiry`` with a timedelta ``expires_at`` made a timestamp from the server's now.

    The session's servers are shared and other tests move their clocks forward, so "in 29
    days" must be counted from the server's clock, not the wall clock.
    """
    offset = expiry.get("expires_at")
    if isinstance(offset, timedelta):
        return {**expiry, "expires_at": (org.server.clock() + offset).isoformat()}
    return expiry


def test_the_org_reads_with_its_policies_off_by_default(org: Org) -> None:
    response = org.api.get("/v1/org")

    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == ORG_FIELDS
    assert body["id"] == org.id
    assert body["id"].startswith("org_")
    assert body["name"].startswith("Test org ")
    assert body["require_explicit_scopes"] is False
    assert body["max_key_lifetime_days"] is None
    assert body["expired_key_retention_days"] == 0
    assert body["expiry_warning_days"] == [7, 1]
    assert body["rotation_period_days"] is None
    assert body["leaked_key_action"] == "disable"
    assert body["route_table"] == []  # nothing passes a gateway until rules are written
    assert datetime.fromisoformat(body["created_at"]).tzinfo is not None
    assert datetime.fromisoformat(body["updated_at"]) >= datetime.fromisoformat(body["created_at"])


def test_each_key_sees_its_own_org(org: Org, other_org: Org) -> None:
    assert org.api.get("/v1/org").json()["id"] == org.id
    assert other_org.api.get("/v1/org").json()["id"] == other_org.id


def test_renaming_the_org_changes_only_its_name(org: Org, other_org: Org) -> None:
    before = org.api.get("/v1/org").json()
    other_before = other_org.api.get("/v1/org").json()

    response = org.api.patch("/v1/org", json={"name": "Acme Corp"})

    assert response.status_code == 200, response.text
    after = response.json()
    assert after["name"] == "Acme Corp"
    assert after["id"] == before["id"]
    assert after["created_at"] == before["created_at"]
    assert after["require_explicit_scopes"] == before["require_explicit_scopes"]
    assert after["max_key_lifetime_days"] == before["max_key_lifetime_days"]
    assert datetime.fromisoformat(after["updated_at"]) >= datetime.fromisoformat(
        before["updated_at"]
    )
    assert org.api.get("/v1/org").json() == after
    assert other_org.api.get("/v1/org").json() == other_before


def test_an_empty_patch_changes_nothing(org: Org) -> None:
    before = org.api.get("/v1/org").json()

    response = org.api.patch("/v1/org", json={})

    assert response.status_code == 200, response.text
    assert {k: v for k, v in response.json().items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }


# ---- require_explicit_scopes ---------------------------------------------------------------------


def test_requiring_explicit_scopes_refuses_a_key_without_scopes(org: Org) -> None:
    response = org.api.patch("/v1/org", json={"require_explicit_scopes": True})
    assert response.status_code == 200, response.text
    assert response.json()["require_explicit_scopes"] is True
    assert org.api.get("/v1/org").json()["require_explicit_scopes"] is True

    problem(org.api.post("/v1/keys", json={"name": "open"}), 422, "scopes")
    problem(org.api.post("/v1/keys", json={"name": "open", "scopes": []}), 422, "scopes")
    explicit = org.api.create_key(scopes=["apps:read"])
    assert explicit["full_access"] is False


def test_a_key_in_a_scoped_app_needs_no_own_scopes_when_scopes_are_required(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "ci", "scopes": ["apps:read"]}).json()
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})

    key = org.api.create_key(app_id=app["id"])

    assert key["effective_scopes"] == ["apps:read"]


def test_lifting_the_explicit_scopes_policy_allows_full_access_keys_again(org: Org) -> None:
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})

    org.api.patch("/v1/org", json={"require_explicit_scopes": False})

    assert org.api.create_key()["full_access"] is True


def test_the_explicit_scopes_policy_is_per_org(org: Org, other_org: Org) -> None:
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})

    assert other_org.api.create_key()["full_access"] is True


def test_the_policy_refuses_a_scopeless_key_in_an_app_without_scopes(org: Org) -> None:
    # The app predates the policy: it grants everything, and so would a key added to it.
    app = org.api.post("/v1/apps", json={"name": "legacy", "scopes": []}).json()
    assert app["full_access"] is True
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})

    body = problem(org.api.post("/v1/keys", json={"name": "k", "app_id": app["id"]}), 422, "scopes")

    assert "'legacy'" in body["detail"]
    assert "full access" in body["detail"]
    assert org.api.get(f"/v1/apps/{app['id']}").json()["key_count"] == 0
    narrowed = org.api.create_key(app_id=app["id"], scopes=["apps:read"])
    assert narrowed["effective_scopes"] == ["apps:read"]
    assert narrowed["full_access"] is False


@pytest.mark.parametrize(
    ("own", "app_scopes", "refused"),
    [
        ([], None, True),
        ([], [], True),
        ([], ["apps:read"], False),
        (["apps:read"], None, False),
        (["apps:read"], [], False),
        (["*"], None, False),  # full access chosen explicitly is what the policy asks for
    ],
    ids=["no-app", "open-app", "scoped-app", "own-no-app", "own-open-app", "explicit-star"],
)
def test_the_policy_looks_at_what_a_key_would_hold_not_only_its_own_scopes(
    org: Org, own: list[str], app_scopes: list[str] | None, refused: bool
) -> None:
    body: dict[str, Any] = {"name": "k", "scopes": own}
    if app_scopes is not None:  # made before the policy, when no scopes was allowed
        body["app_id"] = org.api.post("/v1/apps", json={"name": "a", "scopes": app_scopes}).json()[
            "id"
        ]
    org.api.patch("/v1/org", json={"require_explicit_scopes": True})

    response = org.api.post("/v1/keys", json=body)

    if refused:
        problem(response, 422, "scopes")
    else:
        assert response.status_code == 201, response.text


# ---- max_key_lifetime_days -------------------------------------------------------------------


@pytest.mark.parametrize("days", [1, 30, 3650, None])
def test_max_key_lifetime_accepts_1_to_3650_days_or_null(org: Org, days: int | None) -> None:
    org.api.patch("/v1/org", json={"max_key_lifetime_days": 7})

    response = org.api.patch("/v1/org", json={"max_key_lifetime_days": days})

    assert response.status_code == 200, response.text
    assert response.json()["max_key_lifetime_days"] == days
    assert org.api.get("/v1/org").json()["max_key_lifetime_days"] == days


@pytest.mark.parametrize("days", [0, -1, 3651, 5000, "thirty", 1.5])
def test_max_key_lifetime_outside_1_to_3650_is_422_naming_it(org: Org, days: object) -> None:
    response = org.api.patch("/v1/org", json={"max_key_lifetime_days": days})

    problem(response, 422, "max_key_lifetime_days")
    assert org.api.get("/v1/org").json()["max_key_lifetime_days"] is None


@pytest.mark.parametrize(
    ("expiry", "field"),
    [
        ({}, "expires_at"),
        ({"expires_at": None}, "expires_at"),
        ({"expires_in_days": 60}, "expires_in_days"),
        ({"expires_in_days": 31}, "expires_in_days"),
        ({"expires_at": timedelta(days=31)}, "expires_at"),
    ],
    ids=["no-expiry", "null-expiry", "60-days", "31-days", "timestamp-past-the-cap"],
)
def test_with_a_max_lifetime_a_key_beyond_it_is_422(
    org: Org, expiry: dict[str, Any], field: str
) -> None:
    org.api.patch("/v1/org", json={"max_key_lifetime_days": 30})

    body = {"name": "long", **on_server_clock(org, expiry)}

    problem(org.api.post("/v1/keys", json=body), 422, field)


@pytest.mark.parametrize(
    "expiry",
    [{"expires_in_days": 10}, {"expires_in_days": 30}, {"expires_at": timedelta(days=29)}],
    ids=["10-days", "30-days", "timestamp-within-the-cap"],
)
def test_with_a_max_lifetime_a_key_within_it_is_created(org: Org, expiry: dict[str, Any]) -> None:
    org.api.patch("/v1/org", json={"max_key_lifetime_days": 30})

    key = org.api.create_key(name="short", **on_server_clock(org, expiry))

    expires_at = datetime.fromisoformat(str(key["expires_at"]))
    assert expires_at <= org.server.clock() + timedelta(days=30)


def test_clearing_the_max_lifetime_allows_keys_without_expiry_again(org: Org) -> None:
    org.api.patch("/v1/org", json={"max_key_lifetime_days": 30})

    org.api.patch("/v1/org", json={"max_key_lifetime_days": None})

    assert org.api.create_key()["expires_at"] is None


# ---- invalid input and authorization -----------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"require_explicit_scopes": None}, "require_explicit_scopes"),
        ({"require_explicit_scopes": "maybe"}, "require_explicit_scopes"),
        ({"id": "org_01hzzzzzzzzzzzzzzzzzzzzzzz"}, "id"),
        ({"colour": "blue"}, "colour"),
    ],
    ids=[
        "null-name",
        "empty-name",
        "blank-name",
        "long-name",
        "null-policy",
        "non-bool-policy",
        "id",
        "unknown",
    ],
)
def test_an_invalid_org_patch_is_422_naming_the_field_and_changes_nothing(
    org: Org, body: dict[str, Any], field: str
) -> None:
    before = org.api.get("/v1/org").json()

    problem(org.api.patch("/v1/org", json=body), 422, field)
    assert org.api.get("/v1/org").json() == before


@pytest.mark.parametrize(
    ("held", "method", "missing"),
    [
        ((), "get", "org:read"),
        (("org:write",), "get", "org:read"),
        ((), "patch", "org:write"),
        (("org:read",), "patch", "org:write"),
    ],
    ids=["nothing-get", "write-only-get", "nothing-patch", "read-only-patch"],
)
def test_a_key_without_the_org_scope_is_403_naming_it(
    org: Org, held: tuple[str, ...], method: str, missing: str
) -> None:
    caller = org.key_with(*(held or ("apps:read",)))
    kwargs: dict[str, Any] = {"json": {"name": "Hijacked"}} if method == "patch" else {}

    body = problem(getattr(caller, method)("/v1/org", **kwargs), 403)

    assert body["missing_scope"] == missing
    assert org.api.get("/v1/org").json()["name"] != "Hijacked"


def test_a_key_with_org_read_reads_and_with_org_write_changes(org: Org) -> None:
    reader = org.key_with("org:read")
    writer = org.key_with("org:write")

    assert reader.get("/v1/org").json()["id"] == org.id
    response = writer.patch("/v1/org", json={"max_key_lifetime_days": 90})
    assert response.status_code == 200, response.text
    assert reader.get("/v1/org").json()["max_key_lifetime_days"] == 90


# ---- expiry and rotation settings ----------------------------------------------------------------


def test_the_lifecycle_settings_change_and_are_audited(org: Org) -> None:
    response = org.api.patch(
        "/v1/org",
        json={
            "expired_key_retention_days": 30,
            "expiry_warning_days": [1, 14, 3],
            "rotation_period_days": 90,
        },
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["expired_key_retention_days"] == 30
    assert body["expiry_warning_days"] == [14, 3, 1]  # stored largest first
    assert body["rotation_period_days"] == 90
    assert org.api.get("/v1/org").json() == body
    event = org.api.get("/v1/audit-events", params={"action": "org.update"}).json()["data"][0]
    assert event["changes"] == {
        "expired_key_retention_days": {"before": 0, "after": 30},
        "expiry_warning_days": {"before": [7, 1], "after": [14, 3, 1]},
        "rotation_period_days": {"before": None, "after": 90},
    }


def test_warnings_and_reminders_can_be_switched_off(org: Org) -> None:
    org.api.patch("/v1/org", json={"rotation_period_days": 30})

    response = org.api.patch(
        "/v1/org", json={"expiry_warning_days": [], "rotation_period_days": None}
    )

    assert response.status_code == 200, response.text
    assert response.json()["expiry_warning_days"] == []
    assert response.json()["rotation_period_days"] is None


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"expired_key_retention_days": -1}, "expired_key_retention_days"),
        ({"expired_key_retention_days": 3651}, "expired_key_retention_days"),
        ({"expired_key_retention_days": None}, "expired_key_retention_days"),
        ({"expired_key_retention_days": "7"}, "expired_key_retention_days"),
        ({"expiry_warning_days": [7, 7]}, "expiry_warning_days"),
        ({"expiry_warning_days": [0]}, "expiry_warning_days"),
        ({"expiry_warning_days": [366]}, "expiry_warning_days"),
        ({"expiry_warning_days": [1, 2, 3, 4, 5, 6]}, "expiry_warning_days"),
        ({"expiry_warning_days": None}, "expiry_warning_days"),
        ({"expiry_warning_days": 7}, "expiry_warning_days"),
        ({"rotation_period_days": 0}, "rotation_period_days"),
        ({"rotation_period_days": 3651}, "rotation_period_days"),
        ({"rotation_period_days": True}, "rotation_period_days"),
    ],
    ids=[
        "negative-retention",
        "long-retention",
        "null-retention",
        "string-retention",
        "repeated-threshold",
        "zero-threshold",
        "threshold-over-a-year",
        "six-thresholds",
        "null-thresholds",
        "threshold-not-a-list",
        "zero-rotation",
        "long-rotation",
        "bool-rotation",
    ],
)
def test_an_invalid_lifecycle_setting_is_422_naming_it(
    org: Org, body: dict[str, Any], field: str
) -> None:
    before = org.api.get("/v1/org").json()

    problem(org.api.patch("/v1/org", json=body), 422, field)
    assert org.api.get("/v1/org").json() == before
