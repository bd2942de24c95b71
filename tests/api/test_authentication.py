"""Who may call what: 401 for a key that does not authenticate, 403 for a missing scope or
an attempt to grant more than the caller holds, 404 (never 403) across organizations.

Each test runs on SQLite and on PostgreSQL, in a fresh organization.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from keyplane.domain.catalogue import BUILTIN_RESOURCES
from keyplane.domain.tokens import mint_key

from conftest import Api, Org
from support import problem

# The two ways in: dependency-injected routes, and the hand-written verify route.
ENDPOINTS = {
    "GET /v1/keys": ("GET", "/v1/keys", None),
    "POST /v1/keys/verify": ("POST", "/v1/keys/verify", {"key": "kp_live_not-a-key"}),
}


def call(api: Api, endpoint: str, **kwargs: Any) -> httpx.Response:
    method, path, body = ENDPOINTS[endpoint]
    return api.http.request(method, path, json=body, **kwargs)


def unauthenticated(response: httpx.Response, *presented: str) -> dict[str, Any]:
    """A 401 problem that asks for a bearer token and repeats nothing the caller sent."""
    body = problem(response, 401)
    assert body["type"] == "urn:keyplane:problem:unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    for secret in filter(None, presented):
        assert secret not in response.text
        assert all(secret not in value for value in response.headers.values())
    return body


# ---- 401: no key, or a key that does not authenticate -----------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v1/keys"),
        ("POST", "/v1/keys"),
        ("GET", "/v1/apps"),
        ("GET", "/v1/profiles"),
        ("GET", "/v1/resources"),
        ("GET", "/v1/org"),
        ("POST", "/v1/keys/verify"),
    ],
)
def test_no_authorization_header_is_a_401_asking_for_a_bearer_key(
    org: Org, method: str, path: str
) -> None:
    body = {"name": "x"} if path == "/v1/keys" else {"key": mint_key()}
    response = httpx.request(method, f"{org.server.base_url}{path}", json=body)
    unauthenticated(response)


def key_and_id(org: Org, *scopes: str, **body: object) -> tuple[Api, str]:
    """A client authenticated by a new key of ``org`` holding ``scopes``, and the key's id."""
    created = org.api.create_key(scopes=list(scopes), **body)
    return org.api.as_key(str(created["key"])), str(created["id"])


def _wrong_checksum(key: str) -> str:
    last = "A" if key[-1] != "A" else "B"
    return key[:-1] + last


# Each builds the Authorization header from a real key of the organization, and says
# which part of it must never come back.
BAD_CREDENTIALS: dict[str, Callable[[str], tuple[str, str]]] = {
    "Basic credentials": lambda _key: ("Basic dXNlcjpwYXNzd29yZA==", "dXNlcjpwYXNzd29yZA"),
    "Basic with the real key": lambda key: (f"Basic {key}", key),
    "Token scheme with the real key": lambda key: (f"Token {key}", key),
    "the real key without a scheme": lambda key: (key, key),
    "Bearer garbage": lambda _key: ("Bearer garbage-token-1234", "garbage-token-1234"),
    "Bearer and nothing": lambda _key: ("Bearer", ""),
    "Bearer a wrong checksum": lambda key: (f"Bearer {_wrong_checksum(key)}", key[8:40]),
    "Bearer a truncated key": lambda key: (f"Bearer {key[:-1]}", key[8:40]),
    "Bearer an unknown well-formed key": lambda _key: (
        f"Bearer {(unknown := mint_key())}",
        unknown,
    ),
    "Bearer an unknown test key": lambda _key: (
        f"Bearer {(unknown := mint_key('test'))}",
        unknown,
    ),
}


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("credentials", list(BAD_CREDENTIALS))
def test_a_key_that_does_not_authenticate_is_a_401_that_never_echoes_it(
    org: Org, endpoint: str, credentials: str
) -> None:
    key = str(org.api.create_key(name="real")["key"])
    header, secret = BAD_CREDENTIALS[credentials](key)
    body = unauthenticated(call(org.api, endpoint, headers={"Authorization": header}), secret)
    assert key[8:40] not in body["detail"]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_unknown_and_malformed_keys_get_the_same_answer(org: Org, endpoint: str) -> None:
    """The answer does not tell a guesser whether a well-formed key came close."""
    key = str(org.api.create_key(name="real")["key"])
    answers = [
        call(org.api, endpoint, headers={"Authorization": f"Bearer {presented}"}).json()
        for presented in (mint_key(), _wrong_checksum(key), "garbage")
    ]
    assert answers[0] == answers[1] == answers[2]


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_bearer_scheme_is_case_insensitive(org: Org, endpoint: str, scheme: str) -> None:
    caller = org.key_with("api_keys:read", "keys:verify")
    response = call(caller, endpoint, headers={"Authorization": f"{scheme} {caller.key}"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_disabled_key_is_a_401_until_enabled_again(org: Org, endpoint: str) -> None:
    caller, key_id = key_and_id(org, "api_keys:read", "keys:verify")
    assert call(caller, endpoint).status_code == 200

    changed = org.api.patch(f"/v1/keys/{key_id}", json={"status": "inactive"})
    assert changed.status_code == 200, changed.text
    unauthenticated(call(caller, endpoint), caller.key)

    changed = org.api.patch(f"/v1/keys/{key_id}", json={"status": "active"})
    assert changed.status_code == 200, changed.text
    assert call(caller, endpoint).status_code == 200


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_an_expired_key_is_a_401(org: Org, endpoint: str) -> None:
    clock = org.server.clock  # shared by every test: only ever moved forward
    expires_at = clock() + timedelta(seconds=10)
    caller = org.key_with("api_keys:read", "keys:verify", expires_at=expires_at.isoformat())
    assert call(caller, endpoint).status_code == 200

    clock.advance(timedelta(minutes=1))
    unauthenticated(call(caller, endpoint), caller.key)


@pytest.mark.parametrize("endpoint", list(ENDPOINTS))
def test_a_deleted_key_is_a_401_at_once(org: Org, endpoint: str) -> None:
    caller, key_id = key_and_id(org, "api_keys:read", "keys:verify")
    assert call(caller, endpoint).status_code == 200

    assert org.api.delete(f"/v1/keys/{key_id}").status_code == 204
    unauthenticated(call(caller, endpoint), caller.key)


def test_a_key_whose_app_is_deleted_is_a_401_at_once(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "doomed", "scopes": ["api_keys:read"]}).json()
    caller = org.key_with(app_id=app["id"])
    assert caller.get("/v1/keys").status_code == 200

    assert org.api.delete(f"/v1/apps/{app['id']}").status_code == 204
    unauthenticated(caller.get("/v1/keys"), caller.key)


def test_an_app_scope_change_governs_its_keys_own_calls_at_once(org: Org) -> None:
    app = org.api.post("/v1/apps", json={"name": "shared", "scopes": ["api_keys:read"]}).json()
    caller = org.key_with(app_id=app["id"])
    assert caller.get("/v1/keys").status_code == 200

    narrowed = org.api.patch(f"/v1/apps/{app['id']}", json={"scopes": ["apps:read"]})
    assert narrowed.status_code == 200, narrowed.text
    assert problem(caller.get("/v1/keys"), 403)["missing_scope"] == "api_keys:read"
    assert caller.get("/v1/apps").status_code == 200


# ---- 403: each operation needs its scope ------------------------------------------------

# (method, path, scope, a body the scope alone may send)
OPERATIONS = [
    ("POST", "/v1/keys", "api_keys:write", {"name": "made", "scopes": ["api_keys:write"]}),
    ("GET", "/v1/keys", "api_keys:read", None),
    ("GET", "/v1/keys/{key_id}", "api_keys:read", None),
    ("PATCH", "/v1/keys/{key_id}", "api_keys:write", {"description": "changed"}),
    ("DELETE", "/v1/keys/{key_id}", "api_keys:delete", None),
    ("POST", "/v1/keys/verify", "keys:verify", {"key": "kp_live_not-a-key"}),
    ("POST", "/v1/apps", "apps:write", {"name": "made", "scopes": ["apps:write"]}),
    ("GET", "/v1/apps", "apps:read", None),
    ("GET", "/v1/apps/{app_id}", "apps:read", None),
    ("PATCH", "/v1/apps/{app_id}", "apps:write", {"description": "changed"}),
    ("DELETE", "/v1/apps/{app_id}", "apps:delete", None),
    ("POST", "/v1/profiles", "profiles:write", {"name": "made"}),
    ("GET", "/v1/profiles", "profiles:read", None),
    ("GET", "/v1/profiles/{profile_id}", "profiles:read", None),
    ("PATCH", "/v1/profiles/{profile_id}", "profiles:write", {"description": "changed"}),
    ("DELETE", "/v1/profiles/{profile_id}", "profiles:delete", None),
    ("POST", "/v1/resources", "resources:write", {"name": "gadgets"}),
    ("GET", "/v1/resources", "resources:read", None),
    ("GET", "/v1/resources/{resource}", "resources:read", None),
    ("PATCH", "/v1/resources/{resource}", "resources:write", {"description": "changed"}),
    ("DELETE", "/v1/resources/{resource}", "resources:delete", None),
    ("GET", "/v1/org", "org:read", None),
    ("PATCH", "/v1/org", "org:write", {"name": "Renamed org"}),
]
OPERATION_IDS = [f"{method} {path}" for method, path, _, _ in OPERATIONS]

EVERY_BUILTIN_SCOPE = sorted(
    f"{resource.name}:{action}"
    for resource in BUILTIN_RESOURCES.values()
    for action in resource.actions
)


def _targets(org: Org) -> dict[str, str]:
    """One object of each kind for the paths above, made by the owner."""

    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = org.api.post(path, json=body)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    return {
        "key_id": str(made("/v1/keys", {"name": "target"})["id"]),
        "app_id": str(made("/v1/apps", {"name": "target"})["id"]),
        "profile_id": str(made("/v1/profiles", {"name": "target"})["id"]),
        "resource": str(made("/v1/resources", {"name": "widgets"})["name"]),
    }


@pytest.mark.parametrize(("method", "path", "scope", "body"), OPERATIONS, ids=OPERATION_IDS)
def test_a_key_holding_everything_but_the_scope_is_a_403_naming_it(
    org: Org, method: str, path: str, scope: str, body: dict[str, Any] | None
) -> None:
    url = path.format(**_targets(org))
    caller = org.key_with(*(s for s in EVERY_BUILTIN_SCOPE if s != scope))
    response = caller.http.request(method, url, json=body)
    problem_body = problem(response, 403)
    assert problem_body["type"] == "urn:keyplane:problem:missing-scope"
    assert problem_body["missing_scope"] == scope
    assert scope in problem_body["detail"]


@pytest.mark.parametrize(("method", "path", "scope", "body"), OPERATIONS, ids=OPERATION_IDS)
def test_a_key_holding_only_the_scope_may_call(
    org: Org, method: str, path: str, scope: str, body: dict[str, Any] | None
) -> None:
    url = path.format(**_targets(org))
    response = org.key_with(scope).http.request(method, url, json=body)
    assert response.status_code in (200, 201, 204), response.text


@pytest.mark.parametrize(("method", "path", "scope", "body"), OPERATIONS, ids=OPERATION_IDS)
def test_a_resource_wildcard_covers_each_action(
    org: Org, method: str, path: str, scope: str, body: dict[str, Any] | None
) -> None:
    url = path.format(**_targets(org))
    wildcard = scope.partition(":")[0] + ":*"
    response = org.key_with(wildcard).http.request(method, url, json=body)
    assert response.status_code in (200, 201, 204), response.text


def test_a_key_with_api_keys_wildcard_manages_keys_and_nothing_else(org: Org) -> None:
    manager = org.key_with("api_keys:*")
    made = manager.post("/v1/keys", json={"name": "child", "scopes": ["api_keys:read"]})
    assert made.status_code == 201, made.text
    key_id = made.json()["id"]
    assert key_id in {k["id"] for k in manager.get("/v1/keys").json()["data"]}
    assert manager.get(f"/v1/keys/{key_id}").status_code == 200
    changed = manager.patch(f"/v1/keys/{key_id}", json={"description": "managed"})
    assert changed.status_code == 200, changed.text
    assert manager.delete(f"/v1/keys/{key_id}").status_code == 204

    assert problem(manager.get("/v1/apps"), 403)["missing_scope"] == "apps:read"
    verifying = manager.post("/v1/keys/verify", json={"key": mint_key()})
    assert problem(verifying, 403)["missing_scope"] == "keys:verify"


def test_verifying_needs_keys_verify_and_it_is_enough(org: Org) -> None:
    target = str(org.api.create_key(name="target")["key"])
    everything_else = org.key_with(*(s for s in EVERY_BUILTIN_SCOPE if s != "keys:verify"))
    refused = everything_else.post("/v1/keys/verify", json={"key": target})
    assert problem(refused, 403)["missing_scope"] == "keys:verify"
    assert org.key_with("keys:verify").verify(target)["code"] == "VALID"


# ---- 403: nobody grants what they do not hold ------------------------------------------


@pytest.mark.parametrize(
    ("held", "requested"),
    [
        (["api_keys:write"], ["users:read"]),
        (["api_keys:write"], ["api_keys:*"]),
        (["api_keys:write"], ["*"]),
        (["api_keys:write"], ["api_keys:write", "api_keys:read"]),
        (["api_keys:write", "apps:read"], ["apps:*"]),
        (["api_keys:*"], ["keys:verify"]),
    ],
)
def test_a_key_cannot_create_a_key_with_scopes_it_does_not_hold(
    org: Org, held: list[str], requested: list[str]
) -> None:
    creator = org.key_with(*held)
    response = creator.post("/v1/keys", json={"name": "escalated", "scopes": requested})
    body = problem(response, 403, "scopes")
    assert body["type"] == "urn:keyplane:problem:scope-escalation"
    assert "escalated" not in {k["name"] for k in org.api.get("/v1/keys").json()["data"]}


def test_a_scoped_key_cannot_create_a_full_access_key(org: Org) -> None:
    creator = org.key_with("api_keys:write")
    body = problem(creator.post("/v1/keys", json={"name": "no scopes"}), 403, "scopes")
    assert "'*'" in body["detail"]


def test_a_scoped_key_cannot_escalate_through_a_full_access_app(org: Org) -> None:
    """A key in an app takes the app's scopes: joining a full-access app is escalation too."""
    app = org.api.post("/v1/apps", json={"name": "everything"}).json()
    creator = org.key_with("api_keys:write")
    response = creator.post("/v1/keys", json={"name": "via app", "app_id": app["id"]})
    problem(response, 403, "scopes")


def test_a_key_cannot_make_or_widen_an_app_beyond_its_own_scopes(org: Org) -> None:
    creator = org.key_with("apps:write", "apps:read")
    problem(creator.post("/v1/apps", json={"name": "everything"}), 403, "scopes")
    problem(
        creator.post("/v1/apps", json={"name": "users", "scopes": ["users:read"]}), 403, "scopes"
    )
    app = creator.post("/v1/apps", json={"name": "mine", "scopes": ["apps:read"]})
    assert app.status_code == 201, app.text
    for scopes in (["*"], ["apps:*"], ["apps:read", "users:read"]):
        widened = creator.patch(f"/v1/apps/{app.json()['id']}", json={"scopes": scopes})
        problem(widened, 403, "scopes")
    assert org.api.get(f"/v1/apps/{app.json()['id']}").json()["scopes"] == ["apps:read"]


@pytest.mark.parametrize(
    ("held", "requested"),
    [
        (["api_keys:write"], ["api_keys:write"]),
        (["api_keys:write", "apps:read"], ["apps:read"]),
        (["api_keys:write", "apps:*"], ["apps:read", "apps:write"]),
        (["api_keys:*", "keys:verify"], ["keys:verify"]),
        (["api_keys:*", "keys:verify"], ["api_keys:*", "keys:verify"]),
    ],
)
def test_a_key_may_create_a_key_with_a_subset_of_its_scopes(
    org: Org, held: list[str], requested: list[str]
) -> None:
    creator = org.key_with(*held)
    response = creator.post("/v1/keys", json={"name": "narrower", "scopes": requested})
    assert response.status_code == 201, response.text
    assert sorted(response.json()["effective_scopes"]) == sorted(requested)
    assert response.json()["full_access"] is False


def test_a_key_made_with_keys_verify_can_verify(org: Org) -> None:
    creator = org.key_with("api_keys:*", "keys:verify")
    made = creator.post("/v1/keys", json={"name": "verifier", "scopes": ["keys:verify"]})
    assert made.status_code == 201, made.text
    verifier = creator.as_key(made.json()["key"])
    assert verifier.verify(str(org.api.create_key()["key"]))["code"] == "VALID"


# ---- 404: another organization's objects do not exist here ------------------------------

KINDS = {
    "key": "/v1/keys/{}",
    "app": "/v1/apps/{}",
    "profile": "/v1/profiles/{}",
    "resource": "/v1/resources/{}",
}
UNKNOWN = {
    "key": "key_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "app": "app_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "profile": "prf_01aaaaaaaaaaaaaaaaaaaaaaaa",
    "resource": "nowhere",
}


def _theirs(other_org: Org) -> dict[str, str]:
    made = {
        "app": other_org.api.post("/v1/apps", json={"name": "theirs"}).json()["id"],
        "profile": other_org.api.post("/v1/profiles", json={"name": "theirs"}).json()["id"],
        "resource": other_org.api.post("/v1/resources", json={"name": "theirs"}).json()["name"],
    }
    made["key"] = other_org.api.create_key(name="theirs")["id"]
    return {kind: str(ident) for kind, ident in made.items()}


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_another_organizations_object_is_a_404_like_one_that_never_existed(
    org: Org, other_org: Org, kind: str, method: str
) -> None:
    theirs = _theirs(other_org)[kind]
    body = {"description": "hijacked"} if method == "PATCH" else None

    response = org.api.http.request(method, KINDS[kind].format(theirs), json=body)
    answer = problem(response, 404)
    never = problem(org.api.http.request(method, KINDS[kind].format(UNKNOWN[kind]), json=body), 404)
    assert answer["type"] == never["type"]
    assert answer["detail"].replace(theirs, UNKNOWN[kind]) == never["detail"]

    untouched = other_org.api.get(KINDS[kind].format(theirs))
    assert untouched.status_code == 200, untouched.text
    assert untouched.json()["description"] == ""


def test_another_organizations_objects_are_not_listed(org: Org, other_org: Org) -> None:
    theirs = _theirs(other_org)
    for kind, path in [("key", "/v1/keys"), ("app", "/v1/apps"), ("profile", "/v1/profiles")]:
        listed = {item["id"] for item in org.api.get(path).json()["data"]}
        assert theirs[kind] not in listed
    names = {r["name"] for r in org.api.get("/v1/resources").json()["data"]}
    assert theirs["resource"] not in names


@pytest.mark.parametrize(("field", "kind"), [("app_id", "app"), ("profile_id", "profile")])
def test_naming_another_organizations_object_in_a_body_is_like_naming_none(
    org: Org, other_org: Org, field: str, kind: str
) -> None:
    theirs = _theirs(other_org)[kind]
    answer = problem(org.api.post("/v1/keys", json={"name": "x", field: theirs}), 422, field)
    never = problem(org.api.post("/v1/keys", json={"name": "x", field: UNKNOWN[kind]}), 422)
    assert answer["detail"].replace(theirs, UNKNOWN[kind]) == never["detail"]


def test_verifying_another_organizations_key_is_NOT_FOUND(org: Org, other_org: Org) -> None:
    theirs = other_org.api.create_key(name="theirs")
    verdict = org.key_with("keys:verify").verify(str(theirs["key"]))
    assert verdict["code"] == "NOT_FOUND"
    assert verdict["valid"] is False
    assert verdict["key_id"] is None
    assert verdict["scopes"] == []
    assert verdict["metadata"] is None
