"""Broken function-level authorization, proven absent against one declared policy.

``keyplane.api.policy.POLICY`` states the scope every operation requires. These tests hold
the routes to it (the ``Require`` dependency each route declares, and the operations the
served OpenAPI document lists), then call every operation without credentials (401), as a
key of each built-in role (whose scopes equal the role's), and as a key holding everything
but the required scope: whoever lacks it gets a 403 naming it, and nothing changes.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import iter_route_contexts

from keyplane.api import install
from keyplane.api.deps import Require
from keyplane.api.policy import KEY_ITSELF, POLICY
from keyplane.domain.catalogue import BUILTIN_RESOURCES, Catalogue
from keyplane.domain.ids import new_id
from keyplane.domain.roles import ROLES, role_scopes

from conftest import Api, Org, Server
from support import problem
from support.operations import (
    OPERATIONS,
    PRESENTED_KEY,
    PUBLIC_ANSWERS,
    Operation,
    body,
    call,
    never,
    snapshot,
    targets,
)

# The verify route is the hot path and checks its scope by hand (routes/verify.py): no
# dependency states it, so the behavioural matrix below is what holds it to the table.
CHECKED_BY_HAND = {("POST", "/v1/keys/verify")}
# Open only to the key the path names, whatever scopes it holds (delegation): no scope to
# lack, so the role matrix cannot hold them; the matrix below does.
ITSELF = [op for op in OPERATIONS if POLICY.get((op.method, op.path)) == KEY_ITSELF]
PROTECTED = [op for op in OPERATIONS if POLICY.get((op.method, op.path)) not in (None, KEY_ITSELF)]
PUBLIC = [
    op
    for op in OPERATIONS
    if (op.method, op.path) in POLICY
    and op not in PROTECTED
    and op not in ITSELF
    and not op.form  # see Operation
]
EVERY_BUILTIN_SCOPE = sorted(
    f"{resource.name}:{action}"
    for resource in BUILTIN_RESOURCES.values()
    for action in resource.actions
)


def _routes() -> list[tuple[str, str, Dependant]]:
    """(method, path, dependant) of every documented route the API layer installs."""
    app = FastAPI()
    install(app)
    return [
        (method, route.path_format, route.dependant)
        for route in iter_route_contexts(app.routes)
        if getattr(route, "dependant", None) is not None and route.include_in_schema
        for method in sorted(route.methods or ())
    ]


def _required(dependant: Dependant) -> set[str]:
    scopes: set[str] = set()
    for sub in dependant.dependencies:
        if isinstance(sub.call, Require):
            scopes.add(sub.call.scope)
        scopes |= _required(sub)
    return scopes


def test_the_policy_names_every_operation_of_the_api_and_nothing_else() -> None:
    documented = {(op.method, op.path) for op in OPERATIONS}
    assert documented - POLICY.keys() == set(), "operations the policy does not state"
    assert POLICY.keys() - documented == set(), "policy entries no route serves"


def test_every_route_requires_exactly_the_scope_the_policy_states() -> None:
    stated = {}
    for method, path, dependant in _routes():
        operation = (method, path)
        expected = POLICY[operation]
        if expected == KEY_ITSELF:  # authenticated, and no scope required
            expected = None
        if operation in CHECKED_BY_HAND:
            assert expected is not None
            expected = None
        stated[operation] = (_required(dependant), expected)
    assert len(stated) == len(POLICY)
    wrong = {op: found for op, (found, expected) in stated.items() if found != {expected} - {None}}
    assert wrong == {}


def test_the_served_document_lists_only_operations_the_policy_states(server: Server) -> None:
    served = httpx.get(f"{server.base_url}/openapi.json", timeout=15).json()
    operations = {
        (method.upper(), path) for path, methods in served["paths"].items() for method in methods
    }
    assert operations == set(POLICY)


@pytest.mark.parametrize("op", PROTECTED, ids=[op.id for op in PROTECTED])
def test_every_protected_operation_answers_401_without_credentials(org: Org, op: Operation) -> None:
    ids = targets(org.api, op)
    before = snapshot(org.api)
    with httpx.Client(base_url=org.server.base_url, timeout=15) as anonymous:
        response = call(anonymous, op, ids, body(op))

    answer = problem(response, 401)
    assert answer["type"] == "urn:keyplane:problem:unauthenticated"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert snapshot(org.api) == before


@pytest.mark.parametrize("op", PUBLIC, ids=[op.id for op in PUBLIC])
def test_public_operations_answer_without_credentials(server: Server, op: Operation) -> None:
    with httpx.Client(base_url=server.base_url, timeout=15) as anonymous:
        if op.id in PRESENTED_KEY:  # it judges a presented key: none is a 401
            headers = PRESENTED_KEY[op.id](new_id("org"))
            response = call(anonymous, op, never(op), body(op), headers=headers)
            problem(response, 401)
            assert response.headers["www-authenticate"].startswith("Bearer")
        else:
            answer = call(anonymous, op, never(op), body(op))
            assert answer.status_code == PUBLIC_ANSWERS.get(op.id, 200), answer.text


def _callers(org: Org, scope: str) -> dict[str, Api]:
    """A key for each built-in role, holding exactly its scopes, and one lacking ``scope``."""
    catalogue = Catalogue(())  # a fresh organization: the built-in resources only
    callers = {}
    for role in ROLES:
        held = role_scopes(role, catalogue)
        callers[role] = org.api if held.is_full_access else org.key_with(*held.sorted())
    callers["everything but the scope"] = org.key_with(
        *(s for s in EVERY_BUILTIN_SCOPE if s != scope)
    )
    return callers


@pytest.mark.parametrize("op", PROTECTED, ids=[op.id for op in PROTECTED])
def test_every_role_and_a_key_lacking_the_scope_meet_the_policy(org: Org, op: Operation) -> None:
    scope = POLICY[(op.method, op.path)]
    assert scope is not None
    callers = _callers(org, scope)
    ids = targets(org.api, op)
    before = snapshot(org.api)
    catalogue = Catalogue(())
    denied = {name for name in ROLES if not role_scopes(name, catalogue).covers(scope)} | {
        "everything but the scope"
    }

    for name in sorted(denied):
        response = call(callers[name], op, ids, body(op))
        answer = problem(response, 403)
        assert answer["type"] == "urn:keyplane:problem:missing-scope", name
        assert answer["missing_scope"] == scope, name
        assert scope in answer["detail"], name
    assert snapshot(org.api) == before

    # Whoever holds the scope gets past authorization: a harmless call (an id that never
    # existed, a body naming a field no operation has) answers 200, 404 or 422, never 403.
    for name in sorted(set(callers) - denied):
        probe = call(callers[name], op, never(op), {"probe": 1} if op.has_body else None)
        assert probe.status_code in (200, 404, 422), f"{name}: {probe.text}"
    assert snapshot(org.api) == before
    # Two corners of the role table, stated independently of domain/roles.py.
    assert "owner" not in denied
    # A viewer reads everything, and verifies nothing: the event stream is a GET (as
    # EventSource requires) for verifiers only, like POST /v1/keys/verify.
    assert ("viewer" in denied) == (op.method != "GET" or scope == "keys:verify")


@pytest.mark.parametrize("op", ITSELF, ids=[op.id for op in ITSELF])
def test_operations_of_the_key_itself_answer_only_that_key(org: Org, op: Operation) -> None:
    """Without credentials a 401; as any other key of the organization (every role, and
    full access) a 403 that changes nothing; as the key itself, with no scope at all for
    keyplane's API, past authorization."""
    assert op.params == ("key_id",)
    itself = org.api.create_key(name="itself", scopes=["apps:read"])
    ids = {"key_id": str(itself["id"])}
    before = snapshot(org.api)
    with httpx.Client(base_url=org.server.base_url, timeout=15) as anonymous:
        problem(call(anonymous, op, ids, body(op)), 401)
    catalogue = Catalogue(())
    others = {"owner": org.api} | {
        role: org.key_with(*role_scopes(role, catalogue).sorted())
        for role in ROLES
        if not role_scopes(role, catalogue).is_full_access
    }
    before = snapshot(org.api)

    for name, caller in others.items():
        answer = problem(call(caller, op, ids, body(op)), 403)
        assert answer["type"] == "urn:keyplane:problem:not-the-key", name
    assert snapshot(org.api) == before

    probe = call(org.api.as_key(str(itself["key"])), op, ids, {"probe": 1})
    problem(probe, 422, "probe")
