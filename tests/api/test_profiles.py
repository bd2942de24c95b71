"""/v1/profiles: named settings a key carries to the services that verify it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from conftest import Api, Org
from support import problem

PROFILE_FIELDS = {"id", "name", "description", "settings", "created_at", "updated_at"}
SETTINGS_MAX_BYTES = 16 * 1024
# {"blob":"…"} is 11 bytes of JSON around the blob.
BLOB_OVERHEAD = len('{"blob":""}')


def create_profile(api: Api, name: str = "gold", **body: Any) -> dict[str, Any]:
    body.setdefault("settings", {"rate": 100})
    response = api.post("/v1/profiles", json={"name": name, **body})
    assert response.status_code == 201, response.text
    profile: dict[str, Any] = response.json()
    return profile


def settings_of_size(size: int) -> dict[str, str]:
    """A settings object whose compact JSON is exactly ``size`` bytes."""
    return {"blob": "x" * (size - BLOB_OVERHEAD)}


# ---- create and read ----------------------------------------------------------------------


def test_creating_a_profile_answers_201_with_every_field(org: Org) -> None:
    settings = {"tier": "gold", "rate": {"per_minute": 600}, "regions": ["eu", "us"], "beta": True}

    response = org.api.post(
        "/v1/profiles",
        json={"name": "Gold tier", "description": "Paying customers", "settings": settings},
    )

    assert response.status_code == 201, response.text
    profile = response.json()
    assert set(profile) == PROFILE_FIELDS
    assert profile["id"].startswith("prf_")
    assert profile["name"] == "Gold tier"
    assert profile["description"] == "Paying customers"
    assert profile["settings"] == settings
    created_at = datetime.fromisoformat(profile["created_at"])
    assert created_at.tzinfo is not None
    assert datetime.fromisoformat(profile["updated_at"]) == created_at


def test_a_profile_without_settings_has_an_empty_object(org: Org) -> None:
    response = org.api.post("/v1/profiles", json={"name": "bare"})

    assert response.status_code == 201, response.text
    assert response.json()["settings"] == {}
    assert response.json()["description"] == ""


def test_a_created_profile_reads_back_the_same(org: Org) -> None:
    profile = create_profile(org.api)

    response = org.api.get(f"/v1/profiles/{profile['id']}")

    assert response.status_code == 200
    assert response.json() == profile


def test_an_unknown_profile_is_404(org: Org) -> None:
    problem(org.api.get("/v1/profiles/prf_01hzzzzzzzzzzzzzzzzzzzzzzz"), 404)


@pytest.mark.parametrize(
    ("size", "status"),
    [(SETTINGS_MAX_BYTES, 201), (SETTINGS_MAX_BYTES + 1, 422)],
    ids=["exactly-16-KB", "one-byte-over"],
)
def test_settings_may_be_up_to_16_KB_of_JSON(org: Org, size: int, status: int) -> None:
    response = org.api.post(
        "/v1/profiles", json={"name": "big", "settings": settings_of_size(size)}
    )

    if status == 201:
        assert response.status_code == 201, response.text
    else:
        problem(response, 422, "settings")


@pytest.mark.parametrize(
    "settings", [[1, 2], "text", 3, True, None], ids=["list", "string", "number", "bool", "null"]
)
def test_settings_that_are_not_a_json_object_are_422(org: Org, settings: object) -> None:
    response = org.api.post("/v1/profiles", json={"name": "odd", "settings": settings})

    problem(response, 422, "settings")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "ok", "description": "x" * 1001}, "description"),
        ({"name": "ok", "colour": "blue"}, "colour"),
    ],
)
def test_creating_a_profile_with_invalid_input_is_422_naming_the_field(
    org: Org, body: dict[str, Any], field: str
) -> None:
    problem(org.api.post("/v1/profiles", json=body), 422, field)


def test_a_duplicate_profile_name_is_409_naming_name(org: Org) -> None:
    create_profile(org.api, name="gold")

    problem(org.api.post("/v1/profiles", json={"name": "gold"}), 409, "name")


def test_the_same_profile_name_may_exist_in_another_org(org: Org, other_org: Org) -> None:
    create_profile(org.api, name="gold")

    create_profile(other_org.api, name="gold")


# ---- listing ------------------------------------------------------------------------------


def test_listing_profiles_walks_every_page_without_duplicates_or_loss(org: Org) -> None:
    created = {create_profile(org.api, name=f"profile {n}")["id"] for n in range(5)}

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        response = org.api.get("/v1/profiles", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["data"]) <= 2
        seen += [profile["id"] for profile in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert len(seen) == len(set(seen))
    assert set(seen) == created


def test_listing_profiles_shows_only_the_callers_org(org: Org, other_org: Org) -> None:
    mine = create_profile(org.api, name="mine")
    create_profile(other_org.api, name="theirs")

    page = org.api.get("/v1/profiles").json()

    assert page == {"data": [mine], "next_cursor": None}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"cursor": "nonsense"}, "cursor"),
        ({"cursor": "app_01hzzzzzzzzzzzzzzzzzzzzzzz"}, "cursor"),
        ({"limit": 0}, "limit"),
        ({"limit": 1000}, "limit"),
    ],
)
def test_invalid_paging_is_422_naming_the_parameter(
    org: Org, params: dict[str, Any], field: str
) -> None:
    problem(org.api.get("/v1/profiles", params=params), 422, field)


# ---- update -------------------------------------------------------------------------------


def test_patching_a_profile_changes_only_the_fields_sent(org: Org) -> None:
    profile = create_profile(org.api, name="silver", description="kept", settings={"rate": 1})

    response = org.api.patch(
        f"/v1/profiles/{profile['id']}", json={"name": "platinum", "settings": {"rate": 2}}
    )

    assert response.status_code == 200, response.text
    changed = response.json()
    assert changed["name"] == "platinum"
    assert changed["settings"] == {"rate": 2}
    assert changed["description"] == "kept"
    assert changed["created_at"] == profile["created_at"]
    assert org.api.get(f"/v1/profiles/{profile['id']}").json() == changed


def test_patching_settings_replaces_them_whole(org: Org) -> None:
    profile = create_profile(org.api, settings={"a": 1, "b": 2})

    changed = org.api.patch(f"/v1/profiles/{profile['id']}", json={"settings": {"c": 3}}).json()

    assert changed["settings"] == {"c": 3}


def test_renaming_a_profile_to_a_taken_name_is_409_naming_name(org: Org) -> None:
    create_profile(org.api, name="taken")
    profile = create_profile(org.api, name="free")

    problem(org.api.patch(f"/v1/profiles/{profile['id']}", json={"name": "taken"}), 409, "name")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": None}, "name"),
        ({"description": None}, "description"),
        ({"settings": None}, "settings"),
        ({"settings": [1]}, "settings"),
        ({"settings": settings_of_size(SETTINGS_MAX_BYTES + 1)}, "settings"),
        ({"owner": "me"}, "owner"),
    ],
    ids=["null-name", "null-description", "null-settings", "list-settings", "too-big", "unknown"],
)
def test_an_invalid_profile_patch_is_422_naming_the_field_and_changes_nothing(
    org: Org, body: dict[str, Any], field: str
) -> None:
    profile = create_profile(org.api)

    problem(org.api.patch(f"/v1/profiles/{profile['id']}", json=body), 422, field)
    assert org.api.get(f"/v1/profiles/{profile['id']}").json() == profile


# ---- profiles and keys ------------------------------------------------------------------------


def test_verification_answers_the_keys_profile(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    profile = create_profile(org.api, name="gold", settings={"rate": 100, "tier": "gold"})
    key = org.api.create_key(profile_id=profile["id"])

    verdict = verifier.verify(str(key["key"]))

    assert key["profile_id"] == profile["id"]
    assert verdict["code"] == "VALID"
    assert verdict["profile"] == {
        "id": profile["id"],
        "name": "gold",
        "settings": {"rate": 100, "tier": "gold"},
    }


def test_a_key_without_a_profile_verifies_with_null_profile(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    key = org.api.create_key()

    assert verifier.verify(str(key["key"]))["profile"] is None


def test_a_profile_change_shows_in_the_next_verification(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    profile = create_profile(org.api, name="gold", settings={"rate": 100})
    keys = [org.api.create_key(name=f"key {n}", profile_id=profile["id"]) for n in range(2)]
    for key in keys:  # warm the verification cache: the change must reach it
        assert verifier.verify(str(key["key"]))["profile"] == {
            "id": profile["id"],
            "name": "gold",
            "settings": {"rate": 100},
        }

    response = org.api.patch(
        f"/v1/profiles/{profile['id']}", json={"name": "platinum", "settings": {"rate": 500}}
    )
    assert response.status_code == 200, response.text

    for key in keys:
        assert verifier.verify(str(key["key"]))["profile"] == {
            "id": profile["id"],
            "name": "platinum",
            "settings": {"rate": 500},
        }


def test_attaching_a_profile_to_a_key_shows_in_the_next_verification(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    profile = create_profile(org.api, name="gold", settings={"rate": 100})
    key = org.api.create_key()
    assert verifier.verify(str(key["key"]))["profile"] is None

    org.api.patch(f"/v1/keys/{key['id']}", json={"profile_id": profile["id"]})

    assert verifier.verify(str(key["key"]))["profile"] == {
        "id": profile["id"],
        "name": "gold",
        "settings": {"rate": 100},
    }


def test_detaching_a_profile_shows_in_the_next_verification(org: Org) -> None:
    verifier = org.key_with("keys:verify")
    profile = create_profile(org.api, name="gold")
    key = org.api.create_key(profile_id=profile["id"])
    assert verifier.verify(str(key["key"]))["profile"] is not None

    org.api.patch(f"/v1/keys/{key['id']}", json={"profile_id": None})

    assert verifier.verify(str(key["key"]))["profile"] is None


def test_a_profile_in_use_cannot_be_deleted_until_detached(org: Org) -> None:
    profile = create_profile(org.api)
    key = org.api.create_key(profile_id=profile["id"])

    body = problem(org.api.delete(f"/v1/profiles/{profile['id']}"), 409)
    assert key["id"] in body["detail"]
    assert org.api.get(f"/v1/profiles/{profile['id']}").status_code == 200

    detached = org.api.patch(f"/v1/keys/{key['id']}", json={"profile_id": None})
    assert detached.status_code == 200, detached.text
    assert detached.json()["profile_id"] is None

    response = org.api.delete(f"/v1/profiles/{profile['id']}")
    assert response.status_code == 204
    assert response.content == b""
    problem(org.api.get(f"/v1/profiles/{profile['id']}"), 404)


def test_the_in_use_conflict_names_every_key_carrying_the_profile(org: Org) -> None:
    profile = create_profile(org.api)
    keys = [org.api.create_key(name=f"key {n}", profile_id=profile["id"]) for n in range(3)]

    detail = problem(org.api.delete(f"/v1/profiles/{profile['id']}"), 409)["detail"]

    for key in keys:
        assert key["id"] in detail


def test_deleting_a_key_releases_its_profile(org: Org) -> None:
    profile = create_profile(org.api)
    key = org.api.create_key(profile_id=profile["id"])

    assert org.api.delete(f"/v1/keys/{key['id']}").status_code == 204

    assert org.api.delete(f"/v1/profiles/{profile['id']}").status_code == 204


@pytest.mark.parametrize(
    "profile_id",
    ["prf_01hzzzzzzzzzzzzzzzzzzzzzzz", "nonsense"],
    ids=["well-formed-unknown", "garbage"],
)
def test_a_key_with_an_unknown_profile_is_422_naming_profile_id(org: Org, profile_id: str) -> None:
    response = org.api.post("/v1/keys", json={"name": "k", "profile_id": profile_id})

    problem(response, 422, "profile_id")


def test_attaching_an_unknown_profile_to_a_key_is_422_naming_profile_id(org: Org) -> None:
    key = org.api.create_key()

    response = org.api.patch(
        f"/v1/keys/{key['id']}", json={"profile_id": "prf_01hzzzzzzzzzzzzzzzzzzzzzzz"}
    )

    problem(response, 422, "profile_id")


# ---- isolation and authorization --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "body"),
    [("get", None), ("patch", {"settings": {"stolen": True}}), ("delete", None)],
)
def test_another_orgs_profile_is_404_never_403(
    org: Org, other_org: Org, method: str, body: dict[str, Any] | None
) -> None:
    profile = create_profile(org.api)
    kwargs: dict[str, Any] = {"json": body} if body is not None else {}

    response = getattr(other_org.api, method)(f"/v1/profiles/{profile['id']}", **kwargs)

    problem(response, 404)
    assert org.api.get(f"/v1/profiles/{profile['id']}").json() == profile


def test_a_key_cannot_carry_another_orgs_profile(org: Org, other_org: Org) -> None:
    profile = create_profile(org.api)

    response = other_org.api.post("/v1/keys", json={"name": "k", "profile_id": profile["id"]})

    problem(response, 422, "profile_id")


@pytest.mark.parametrize(
    ("method", "path", "scope"),
    [
        ("get", "/v1/profiles", "profiles:read"),
        ("post", "/v1/profiles", "profiles:write"),
        ("get", "/v1/profiles/{id}", "profiles:read"),
        ("patch", "/v1/profiles/{id}", "profiles:write"),
        ("delete", "/v1/profiles/{id}", "profiles:delete"),
    ],
)
def test_a_key_without_the_needed_scope_is_403_naming_it(
    org: Org, method: str, path: str, scope: str
) -> None:
    profile = create_profile(org.api)
    others = [s for s in ("profiles:read", "profiles:write", "profiles:delete") if s != scope]
    caller = org.key_with(*others)
    kwargs: dict[str, Any] = {}
    if method in ("post", "patch"):
        kwargs["json"] = {"name": "renamed"}

    response = getattr(caller, method)(path.format(id=profile["id"]), **kwargs)

    body = problem(response, 403)
    assert body["missing_scope"] == scope
    assert org.api.get(f"/v1/profiles/{profile['id']}").json() == profile
