"""POST/GET /v1/keys/{key_id}/children: delegated keys, created by the parent key itself,
never more than the parent (scopes, expiry, limits, depth), and stopped with it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from keyplane.api.policy import KEY_ITSELF, POLICY
from keyplane.services.expiry import ExpiryJob
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import audit_events

from conftest import Api, Org
from support import eventually, problem
from support.operations import snapshot

CHILDREN = "/v1/keys/{}/children"


def _parent(org: Org, **body: Any) -> tuple[Api, dict[str, Any]]:
    """A key of ``org`` (no api_keys scope unless asked) and a client calling as it."""
    body.setdefault("scopes", ["apps:read", "apps:write"])
    made = org.api.create_key(name="agent runner", **body)
    return org.api.as_key(str(made["key"])), made


def _child(caller: Api, parent_id: object, **body: Any) -> dict[str, Any]:
    body.setdefault("name", "agent")
    response = caller.post(CHILDREN.format(parent_id), json=body)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    child: dict[str, Any] = response.json()
    return child


def _at(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def test_the_policy_marks_creation_as_the_key_itself_and_listing_as_api_keys_read() -> None:
    assert POLICY[("POST", "/v1/keys/{key_id}/children")] == KEY_ITSELF
    assert POLICY[("GET", "/v1/keys/{key_id}/children")] == "api_keys:read"


def test_a_key_without_api_keys_write_creates_a_child_shown_once(org: Org) -> None:
    parent, made = _parent(org)

    child = _child(parent, made["id"], scopes=["apps:read"], metadata={"job": "nightly"})

    assert child["key"].startswith("kp_live_")
    assert child["parent_id"] == made["id"]
    assert child["depth"] == 1
    assert child["scopes"] == ["apps:read"]
    assert child["metadata"] == {"job": "nightly"}
    assert child["created_by"] == made["id"]
    lifetime = _at(child["expires_at"]) - _at(child["created_at"])
    assert timedelta(minutes=59) < lifetime <= timedelta(hours=1)
    shown = org.api.get(f"/v1/keys/{child['id']}").json()
    assert "key" not in shown
    assert (shown["parent_id"], shown["depth"]) == (made["id"], 1)
    assert org.api.verify(child["key"], ["apps:read"])["code"] == "VALID"
    assert org.api.verify(child["key"], ["apps:write"])["code"] == "INSUFFICIENT_SCOPE"


def test_without_scopes_a_child_gets_all_of_the_parents_effective_scopes(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "models", "scopes": ["apps:read"]}).json()
    # Own scopes wider than the app's: the app narrows them, and the child gets the narrow.
    parent, made = _parent(org, scopes=["apps:*"], app_id=app["id"])

    child = _child(parent, made["id"])

    assert child["effective_scopes"] == ["apps:read"]
    assert child["app_id"] == app["id"]
    assert child["full_access"] is False


def test_a_scope_the_parent_holds_only_through_its_own_scopes_but_not_its_app_is_refused(
    org: Org,
) -> None:
    app = org.api.post("/v1/apps", json={"name": "ro", "scopes": ["apps:read"]}).json()
    parent, made = _parent(org, scopes=["apps:*"], app_id=app["id"])

    response = parent.post(
        CHILDREN.format(made["id"]), json={"name": "x", "scopes": ["apps:write"]}
    )

    answer = problem(response, 403, "scopes")
    assert answer["type"] == "urn:keyplane:problem:scope-escalation"


def test_only_the_key_itself_may_delegate_even_an_owner_gets_a_403(org: Org) -> None:
    _, made = _parent(org)
    other, _ = _parent(org)
    before = snapshot(org.api)

    for caller in (org.api, other):
        answer = problem(caller.post(CHILDREN.format(made["id"]), json={"name": "x"}), 403)
        assert answer["type"] == "urn:keyplane:problem:not-the-key"
        assert made["id"] in answer["detail"]
    assert snapshot(org.api) == before


def test_another_organizations_key_is_a_404_like_one_that_never_existed(
    org: Org, other_org: Org
) -> None:
    _, theirs = _parent(other_org)
    problem(org.api.post(CHILDREN.format(theirs["id"]), json={"name": "x"}), 404)
    problem(org.api.get(CHILDREN.format(theirs["id"])), 404)


def test_an_expiry_after_the_parents_or_too_far_is_a_422(org: Org) -> None:
    parent, made = _parent(org, expires_in_days=1)
    after = (_at(made["expires_at"]) + timedelta(seconds=1)).isoformat()

    problem(
        parent.post(CHILDREN.format(made["id"]), json={"name": "x", "expires_at": after}),
        422,
        "expires_at",
    )
    problem(
        parent.post(CHILDREN.format(made["id"]), json={"name": "x", "expires_in": 31 * 86400}),
        422,
        "expires_in",
    )
    soon = _child(parent, made["id"], expires_in=60)
    assert _at(soon["expires_at"]) - _at(soon["created_at"]) == timedelta(seconds=60)


def test_a_child_of_a_parent_expiring_within_the_hour_expires_with_it(org: Org) -> None:
    root, made = _parent(org)
    short = _child(root, made["id"], expires_in=600)
    grandchild = _child(org.api.as_key(short["key"]), short["id"])
    assert grandchild["expires_at"] == short["expires_at"]


def test_depth_is_limited_to_two_by_default(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])
    grandchild = _child(org.api.as_key(child["key"]), child["id"])
    assert grandchild["depth"] == 2

    response = org.api.as_key(grandchild["key"]).post(
        CHILDREN.format(grandchild["id"]), json={"name": "too deep"}
    )

    answer = problem(response, 403)
    assert answer["type"] == "urn:keyplane:problem:delegation-depth"
    assert "KEYPLANE_MAX_KEY_DEPTH" in answer["detail"]


def test_rate_limits_are_inherited_and_never_looser(org: Org) -> None:
    parent, made = _parent(org, ratelimits=[{"name": "burst", "limit": 10, "period_seconds": 60}])
    url = CHILDREN.format(made["id"])

    inherited = _child(parent, made["id"])
    assert inherited["ratelimits"] == [{"name": "burst", "limit": 10, "period_seconds": 60}]
    # A smaller burst at a slower rate, plus a limit of its own: stricter.
    stricter = _child(
        parent,
        made["id"],
        ratelimits=[
            {"name": "burst", "limit": 5, "period_seconds": 60},
            {"name": "daily", "limit": 100, "period_seconds": 86400},
        ],
    )
    assert len(stricter["ratelimits"]) == 2
    looser = [
        [],  # drops the parent's limit
        [{"name": "burst", "limit": 20, "period_seconds": 60}],  # bigger burst
        [{"name": "burst", "limit": 10, "period_seconds": 30}],  # faster rate
        [{"name": "other", "limit": 1, "period_seconds": 60}],  # a different name only
    ]
    for ratelimits in looser:
        problem(parent.post(url, json={"name": "x", "ratelimits": ratelimits}), 422, "ratelimits")


def test_a_quota_is_inherited_never_larger_and_never_dropped(org: Org) -> None:
    parent, made = _parent(org, quota={"remaining": 50})
    url = CHILDREN.format(made["id"])

    assert _child(parent, made["id"])["quota"]["remaining"] <= 50
    assert _child(parent, made["id"], quota={"remaining": 5})["quota"]["remaining"] == 5
    problem(
        parent.post(url, json={"name": "x", "quota": {"remaining": 51}}), 422, "quota.remaining"
    )
    problem(parent.post(url, json={"name": "x", "quota": None}), 422, "quota")
    refill = {"remaining": 5, "refill": {"amount": 5, "interval": "daily"}}
    problem(parent.post(url, json={"name": "x", "quota": refill}), 422, "quota.refill")


def test_a_childs_patch_stays_within_its_parent(org: Org) -> None:
    parent, made = _parent(org, expires_in_days=1, quota={"remaining": 50})
    child = _child(parent, made["id"], quota={"remaining": 5})
    later = (_at(made["expires_at"]) + timedelta(minutes=1)).isoformat()

    problem(org.api.patch(f"/v1/keys/{child['id']}", json={"expires_at": later}), 422, "expires_at")
    problem(org.api.patch(f"/v1/keys/{child['id']}", json={"quota": {"add": 1}}), 422, "quota.add")
    problem(
        org.api.patch(f"/v1/keys/{child['id']}", json={"quota": {"remaining": 500}}),
        422,
        "quota.remaining",
    )


def test_disabling_the_parent_stops_every_descendant_and_enabling_restores_them(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])
    grandchild = _child(org.api.as_key(child["key"]), child["id"])
    own_off = _child(root, made["id"], name="disabled itself")
    org.api.patch(f"/v1/keys/{own_off['id']}", json={"status": "inactive"})
    for key in (child, grandchild):
        assert org.api.verify(key["key"])["code"] == "VALID"

    org.api.patch(f"/v1/keys/{made['id']}", json={"status": "inactive"})
    for key in (child, grandchild, own_off):
        assert org.api.verify(key["key"])["code"] == "DISABLED"
    assert org.api.as_key(grandchild["key"]).get("/v1/keys").status_code == 401

    org.api.patch(f"/v1/keys/{made['id']}", json={"status": "active"})
    assert org.api.verify(child["key"])["code"] == "VALID"
    assert org.api.verify(grandchild["key"])["code"] == "VALID"
    assert org.api.verify(own_off["key"])["code"] == "DISABLED"


def test_deleting_the_parent_deletes_its_descendants_each_audited(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])
    grandchild = _child(org.api.as_key(child["key"]), child["id"])
    assert org.api.verify(grandchild["key"])["code"] == "VALID"

    assert org.api.delete(f"/v1/keys/{made['id']}").status_code == 204

    for key in (child, grandchild):
        assert org.api.verify(key["key"])["code"] == "NOT_FOUND"
        problem(org.api.get(f"/v1/keys/{key['id']}"), 404)
    events = org.api.get("/v1/audit-events?action=key.delete&limit=10").json()["data"]
    by_target = {e["target"]["id"]: e for e in events}
    assert by_target[grandchild["id"]]["details"]["with_ancestor"] == made["id"]
    assert by_target[child["id"]]["details"]["with_ancestor"] == made["id"]


def test_shortening_the_parents_expiry_moves_the_descendants(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])
    grandchild = _child(org.api.as_key(child["key"]), child["id"])
    soon = (_at(child["created_at"]) + timedelta(minutes=10)).isoformat()

    assert org.api.patch(f"/v1/keys/{made['id']}", json={"expires_at": soon}).status_code == 200

    for key in (child, grandchild):
        assert _at(org.api.get(f"/v1/keys/{key['id']}").json()["expires_at"]) == _at(soon)


def test_rotating_the_parent_out_ends_its_children_with_the_grace(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])
    rotated = org.api.post(f"/v1/keys/{made['id']}/rotate", json={"grace_period_seconds": 60})
    assert rotated.status_code == 201, rotated.text

    shown = org.api.get(f"/v1/keys/{child['id']}").json()
    grace_end = org.api.get(f"/v1/keys/{made['id']}").json()["expires_at"]
    assert _at(shown["expires_at"]) == _at(grace_end)
    assert org.api.verify(child["key"])["code"] == "VALID"
    org.server.clock.advance(timedelta(seconds=61))
    assert org.api.verify(child["key"])["code"] == "EXPIRED"


def test_a_delegated_key_is_not_rotated(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])
    problem(org.api.post(f"/v1/keys/{child['id']}/rotate", json={}), 409, "key_id")


def test_children_are_listed_under_the_parent_and_in_the_key_list(org: Org) -> None:
    root, made = _parent(org)
    first = _child(root, made["id"], name="first")
    second = _child(root, made["id"], name="second")
    _child(org.api.as_key(first["key"]), first["id"], name="grandchild")

    listed = org.api.get(CHILDREN.format(made["id"]) + "?limit=1").json()
    assert [k["id"] for k in listed["data"]] == [second["id"]]
    rest = org.api.get(CHILDREN.format(made["id"]) + f"?limit=1&cursor={listed['next_cursor']}")
    assert [k["id"] for k in rest.json()["data"]] == [first["id"]]
    filtered = org.api.get(f"/v1/keys?parent_id={made['id']}").json()["data"]
    assert {k["id"] for k in filtered} == {first["id"], second["id"]}
    everything = {k["id"] for k in org.api.get("/v1/keys?limit=200").json()["data"]}
    assert {first["id"], second["id"]} <= everything


def test_the_creation_event_names_the_parent_and_holds_no_secret(org: Org) -> None:
    root, made = _parent(org)
    child = _child(root, made["id"])

    events = org.api.get(f"/v1/audit-events?target_id={child['id']}").json()["data"]
    created = next(e for e in events if e["action"] == "key.create")
    assert created["details"]["parent_id"] == made["id"]
    assert created["actor"]["id"] == made["id"]
    store = org.server.kp.store
    assert isinstance(store, SqlStore)
    with store.engine.connect() as conn:
        rows = conn.execute(select(audit_events).where(audit_events.c.org_id == org.id)).all()
    assert all(child["key"] not in str(row._mapping) for row in rows)
    assert all(child["key"][8:] not in str(row._mapping) for row in rows)


@pytest.mark.parametrize("scopes", [["apps:read"], None])
def test_the_expired_parent_and_its_descendants_are_purged_together(
    org: Org, scopes: list[str] | None
) -> None:
    root, made = _parent(org)
    body = {} if scopes is None else {"scopes": scopes}
    child = _child(root, made["id"], expires_in=60, **body)
    org.api.patch(f"/v1/keys/{made['id']}", json={"expires_at": child["expires_at"]})
    org.server.clock.advance(timedelta(minutes=2))
    assert org.api.verify(child["key"])["code"] == "EXPIRED"

    expiry = next(job for job in org.server.kp.jobs.jobs if isinstance(job, ExpiryJob))

    def purged_both() -> bool:
        # A round skips rows another transaction holds (FOR UPDATE SKIP LOCKED: the
        # last-used batch of the verification above); the next round takes them.
        expiry.run(org.server.clock())
        return all(
            org.api.get(f"/v1/keys/{k}").status_code == 404 for k in (made["id"], child["id"])
        )

    assert eventually(purged_both)
    purged = org.api.get("/v1/audit-events?action=key.purge&limit=20").json()["data"]
    assert {made["id"], child["id"]} <= {e["target"]["id"] for e in purged}


def test_creating_a_child_needs_the_key_itself_so_no_credentials_is_a_401(org: Org) -> None:
    _, made = _parent(org)
    with httpx.Client(base_url=org.server.base_url, timeout=15) as anonymous:
        response = anonymous.post(CHILDREN.format(made["id"]), json={"name": "x"})
    problem(response, 401)


@pytest.mark.parametrize("field", ["scopes", "ratelimits"])
def test_null_scopes_or_limits_are_a_422_not_the_parents(org: Org, field: str) -> None:
    parent, made = _parent(org)
    response = parent.post(CHILDREN.format(made["id"]), json={"name": "x", field: None})
    problem(response, 422, field)


def test_narrowing_the_parents_app_narrows_its_children_too(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "rw", "scopes": ["apps:read", "apps:write"]})
    parent, made = _parent(org, scopes=[], app_id=app.json()["id"])
    child = _child(parent, made["id"])
    assert org.api.verify(child["key"], ["apps:write"])["code"] == "VALID"

    org.api.patch(f"/v1/apps/{app.json()['id']}", json={"scopes": ["apps:read"]})

    assert org.api.verify(child["key"], ["apps:write"])["code"] == "INSUFFICIENT_SCOPE"
    assert org.api.verify(child["key"], ["apps:read"])["code"] == "VALID"
