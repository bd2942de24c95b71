"""POST /v1/keys/{key_id}/rotate: a successor shown once, the old key kept for a grace."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from keyplane.domain.tokens import parse_key
from keyplane.storage.store import SqlStore
from keyplane.storage.tables import audit_events

from conftest import Api, Org
from support import eventually, problem

DAY = timedelta(days=1)


def _rotate(org: Org, key_id: object, **body: object) -> dict[str, Any]:
    response = org.api.post(f"/v1/keys/{key_id}/rotate", json=body)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    rotated: dict[str, Any] = response.json()
    return rotated


def _key(org: Org, key_id: object) -> dict[str, Any]:
    response = org.api.get(f"/v1/keys/{key_id}")
    assert response.status_code == 200, response.text
    key: dict[str, Any] = response.json()
    return key


def _at(value: object) -> datetime:
    return datetime.fromisoformat(str(value))


def test_rotation_issues_a_successor_that_carries_everything_the_old_key_was_for(
    org: Org,
) -> None:
    app = org.api.post("/v1/apps", json={"name": "billing", "scopes": ["apps:read"]}).json()
    profile = org.api.post("/v1/profiles", json={"name": "gold", "settings": {"t": 1}}).json()
    old = org.api.create_key(
        name="billing service",
        description="reads invoices",
        scopes=["apps:read"],
        app_id=app["id"],
        profile_id=profile["id"],
        metadata={"team": "billing"},
        environment="test",
    )

    new = _rotate(org, old["id"])

    assert parse_key(str(new["key"])) is not None
    assert new["key"] != old["key"]
    assert new["client_secret"] == new["key"]
    assert new["id"] != old["id"]
    for field in ("name", "description", "scopes", "app_id", "profile_id", "metadata"):
        assert new[field] == old[field], field
    assert new["environment"] == "test"
    assert str(new["key"]).startswith("kp_test_")
    assert new["rotated_from"] == old["id"]
    assert new["rotated_to"] is None
    assert new["verifications_since_rotation"] is None
    shown = _key(org, old["id"])
    assert shown["rotated_to"] == new["id"]
    assert shown["rotated_at"] is not None
    assert shown["verifications_since_rotation"] == 0
    assert "key" not in shown


def test_the_old_key_verifies_during_the_grace_and_is_EXPIRED_after(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    assert org.api.verify(str(old["key"]))["code"] == "VALID"  # now cached

    new = _rotate(org, old["id"], grace_period_seconds=3600)

    assert org.api.verify(str(old["key"]))["code"] == "VALID"
    assert _at(_key(org, old["id"])["expires_at"]) <= _at(new["created_at"]) + timedelta(hours=1)
    org.server.clock.advance(timedelta(hours=1, seconds=1))
    assert org.api.verify(str(old["key"]))["code"] == "EXPIRED"
    assert _key(org, old["id"])["status"] == "expired"
    assert org.api.verify(str(new["key"]))["code"] == "VALID"


def test_a_zero_grace_expires_the_cached_old_key_at_once(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    assert org.api.verify(str(old["key"]))["code"] == "VALID"  # now cached

    new = _rotate(org, old["id"], grace_period_seconds=0)

    assert org.api.verify(str(old["key"]))["code"] == "EXPIRED"
    assert org.api.verify(str(new["key"]))["code"] == "VALID"


def test_a_key_is_rotated_only_once_and_the_409_names_its_successor(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    new = _rotate(org, old["id"])

    for grace in (3600, 0):  # during the grace, and whatever grace is asked
        response = org.api.post(
            f"/v1/keys/{old['id']}/rotate", json={"grace_period_seconds": grace}
        )
        assert new["id"] in problem(response, 409, "key_id")["detail"]
    assert _key(org, old["id"])["rotated_to"] == new["id"]


def test_the_successor_can_itself_be_rotated(org: Org) -> None:
    first = org.api.create_key(scopes=["apps:read"])
    second = _rotate(org, first["id"])

    third = _rotate(org, second["id"])

    assert third["rotated_from"] == second["id"]
    assert _key(org, second["id"])["rotated_to"] == third["id"]


def test_an_expired_key_cannot_be_rotated(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"], expires_in_days=1)
    org.server.clock.advance(DAY + timedelta(seconds=1))

    response = org.api.post(f"/v1/keys/{old['id']}/rotate", json={})

    assert "expired" in problem(response, 409, "key_id")["detail"]


def test_the_successor_keeps_the_old_keys_lifetime_from_now(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"], expires_in_days=10)
    org.server.clock.advance(3 * DAY)

    new = _rotate(org, old["id"])

    lifetime = _at(new["expires_at"]) - _at(new["created_at"])
    assert abs(lifetime - 10 * DAY) < timedelta(seconds=1)


def test_the_successor_stays_within_the_organizations_maximum_lifetime(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"], expires_in_days=90)
    forever = org.api.create_key(scopes=["apps:read"])
    assert org.api.patch("/v1/org", json={"max_key_lifetime_days": 30}).status_code == 200

    capped = _rotate(org, old["id"])
    given = _rotate(org, forever["id"])

    for new in (capped, given):
        lifetime = _at(new["expires_at"]) - _at(new["created_at"])
        assert timedelta(days=30) - timedelta(seconds=1) < lifetime <= timedelta(days=30)


def test_a_key_without_expiry_is_succeeded_by_one_without_expiry(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])

    new = _rotate(org, old["id"])

    assert new["expires_at"] is None
    # The grace ends the old key all the same.
    assert _key(org, old["id"])["expires_at"] is not None


def test_a_grace_never_outlives_the_old_keys_own_expiry(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"], expires_in_days=1)

    _rotate(org, old["id"], grace_period_seconds=2_592_000)

    assert _key(org, old["id"])["expires_at"] == old["expires_at"]


def test_a_rotated_keys_grace_can_be_shortened_but_not_extended(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    _rotate(org, old["id"], grace_period_seconds=3600)
    grace_end = _at(_key(org, old["id"])["expires_at"])

    later = org.api.patch(
        f"/v1/keys/{old['id']}", json={"expires_at": (grace_end + DAY).isoformat()}
    )
    earlier = org.api.patch(
        f"/v1/keys/{old['id']}",
        json={"expires_at": (grace_end - timedelta(minutes=30)).isoformat()},
    )

    problem(later, 422, "expires_at")
    assert earlier.status_code == 200


def test_rotation_refuses_to_hand_on_scopes_the_caller_does_not_hold(org: Org) -> None:
    target = org.api.create_key(scopes=["apps:read", "profiles:read"])
    narrow = org.key_with("api_keys:write", "api_keys:read", "apps:read")
    enough = org.key_with("api_keys:write", "apps:read", "profiles:read")

    refused = narrow.post(f"/v1/keys/{target['id']}/rotate", json={})
    assert "profiles:read" in problem(refused, 403)["detail"]
    assert _key(org, target["id"])["rotated_to"] is None

    assert enough.post(f"/v1/keys/{target['id']}/rotate", json={}).status_code == 201


def test_rotation_needs_api_keys_write(org: Org) -> None:
    target = org.api.create_key(scopes=["apps:read"])
    reader = org.key_with("api_keys:read", "apps:read")

    response = reader.post(f"/v1/keys/{target['id']}/rotate", json={})

    assert "api_keys:write" in problem(response, 403)["detail"]


def test_another_organizations_key_is_a_404(org: Org, other_org: Org) -> None:
    theirs = other_org.api.create_key(scopes=["apps:read"])

    response = org.api.post(f"/v1/keys/{theirs['id']}/rotate", json={})

    problem(response, 404)
    assert _key(other_org, theirs["id"])["rotated_to"] is None


@pytest.mark.parametrize("grace", [-1, 2_592_001, "soon", 1.5, None])
def test_a_grace_outside_zero_to_thirty_days_is_a_422_naming_it(org: Org, grace: object) -> None:
    target = org.api.create_key(scopes=["apps:read"])

    response = org.api.post(f"/v1/keys/{target['id']}/rotate", json={"grace_period_seconds": grace})

    problem(response, 422, "grace_period_seconds")


def test_the_default_grace_is_one_day(org: Org) -> None:
    target = org.api.create_key(scopes=["apps:read"])

    response = org.api.post(f"/v1/keys/{target['id']}/rotate")

    assert response.status_code == 201, response.text
    old = _key(org, target["id"])
    assert _at(old["expires_at"]) - _at(old["rotated_at"]) == DAY


def test_the_old_key_shows_its_last_use_and_verifications_since_rotation(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    _rotate(org, old["id"])

    for _ in range(3):
        assert org.api.verify(str(old["key"]))["code"] == "VALID"

    shown = eventually(
        lambda: (key := _key(org, old["id"]))["verifications_since_rotation"] == 3 and key
    )
    assert shown["verifications_since_rotation"] == 3
    assert shown["last_used_at"] is not None


def test_rotation_is_audited_with_both_keys(org: Org) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    new = _rotate(org, old["id"], grace_period_seconds=60)

    store = org.server.kp.store
    assert isinstance(store, SqlStore)
    c = audit_events.c
    query = select(c.target_id, c.details).where(c.org_id == org.id, c.action == "key.rotate")
    with store.engine.connect() as conn:
        rotations = list(conn.execute(query))
    assert [row.target_id for row in rotations] == [old["id"]]
    assert rotations[0].details["rotated_to"] == new["id"]
    assert rotations[0].details["grace_period_seconds"] == 60


def test_of_two_concurrent_rotations_one_wins_and_the_other_names_its_successor(
    org: Org,
) -> None:
    old = org.api.create_key(scopes=["apps:read"])
    callers = [org.key_with("api_keys:write", "apps:read") for _ in range(2)]
    start = threading.Barrier(len(callers))

    def rotate(caller: Api) -> httpx.Response:
        start.wait()
        return caller.post(f"/v1/keys/{old['id']}/rotate", json={})

    with ThreadPoolExecutor(len(callers)) as pool:
        responses = list(pool.map(rotate, callers))

    assert sorted(r.status_code for r in responses) == [201, 409]
    [won] = [r.json() for r in responses if r.status_code == 201]
    [lost] = [r for r in responses if r.status_code == 409]
    assert won["id"] in problem(lost, 409, "key_id")["detail"]
    assert _key(org, old["id"])["rotated_to"] == won["id"]
