"""Broken object-level authorization, proven absent for every operation taking a path id.

The operations come from the API's own OpenAPI document: each one that names an object in
its path is called by another organization's owner (full access) on an object of this
organization, and must answer exactly as for an id that never existed (404, the same
document but for the id it echoes), leaving everything of the organization as it was.

A new route with a path id and no factory to make its object fails
``test_every_path_id_has_a_factory``, so no route escapes the matrix.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import pytest

from conftest import Org
from support import problem
from support.operations import (
    FACTORIES,
    NEVER,
    OPERATIONS,
    Operation,
    body,
    call,
    never,
    request_fields,
    snapshot,
    targets,
)

ID_OPERATIONS = [op for op in OPERATIONS if op.params]


def test_every_path_id_has_a_factory() -> None:
    params = {param for op in ID_OPERATIONS for param in op.params}
    assert len(ID_OPERATIONS) >= 15  # the route table was really read
    assert params - FACTORIES.keys() == set(), "a path id no factory can make an object for"
    assert params - NEVER.keys() == set(), "a path id with no never-existing counterpart"


def _as_placeholders(response: httpx.Response, ids: Mapping[str, str]) -> dict[str, Any]:
    text = response.text
    for param, ident in ids.items():
        text = text.replace(ident, "{" + param + "}")
    media_type = response.headers.get("content-type", "").split(";")[0].strip()
    if media_type not in ("application/json", "application/problem+json"):
        return {"body": text}  # an export (CSV, JSON Lines) compares as text
    answer: dict[str, Any] = httpx.Response(200, content=text).json()
    return answer


@pytest.mark.parametrize("op", ID_OPERATIONS, ids=[op.id for op in ID_OPERATIONS])
def test_another_organizations_object_is_a_404_like_an_id_that_never_existed(
    org: Org, other_org: Org, op: Operation
) -> None:
    theirs = targets(other_org.api, op)
    before = snapshot(other_org.api)
    payload = body(op)

    answer = call(org.api, op, theirs, payload)
    absent_ids = never(op)
    absent = call(org.api, op, absent_ids, payload)

    problem(answer, 404)
    problem(absent, 404)
    assert _as_placeholders(answer, theirs) == _as_placeholders(absent, absent_ids)
    assert answer.headers["content-type"] == absent.headers["content-type"]
    assert snapshot(other_org.api) == before
    # Their own owner still reaches the object: it was not found, not destroyed.
    if op.method == "GET":
        assert call(other_org.api, op, theirs).status_code == 200


def _references(op: Operation) -> list[tuple[str, str]]:
    return [(where, name) for where, name in request_fields(op) if name.endswith("_id")]


REFERENCES = [(op, where, name) for op in OPERATIONS for where, name in _references(op)]


def test_every_id_in_a_query_or_body_has_a_factory() -> None:
    assert len(REFERENCES) >= 3  # app_id and profile_id in key bodies, app_id as a filter
    assert {name for _, _, name in REFERENCES} - FACTORIES.keys() == set()


@pytest.mark.parametrize(
    ("op", "where", "name"),
    REFERENCES,
    ids=[f"{op.id} {where}.{name}" for op, where, name in REFERENCES],
)
def test_naming_another_organizations_object_in_a_query_or_body_is_like_naming_none(
    org: Org, other_org: Org, op: Operation, where: str, name: str
) -> None:
    ids = targets(org.api, op)
    theirs = {name: FACTORIES[name](other_org.api)}
    absent_ids = {name: NEVER[name]()}
    before = snapshot(other_org.api)
    mine = snapshot(org.api)

    def send(reference: dict[str, str]) -> httpx.Response:
        payload = body(op)
        if where == "body":
            assert payload is not None
            payload |= reference
            return call(org.api, op, ids, payload)
        return call(org.api, op, ids, payload, params=reference)

    answer, absent = send(theirs), send(absent_ids)

    assert answer.status_code == absent.status_code, answer.text
    # An empty list, a 422 naming it, or a 404 where the object is what the operation is
    # about (a usage series of one key): in each case exactly as for an id that never was.
    assert answer.status_code in (200, 404, 422), answer.text
    assert _as_placeholders(answer, theirs) == _as_placeholders(absent, absent_ids)
    if answer.status_code == 422:
        problem(answer, 422, name)
    assert snapshot(other_org.api) == before
    assert snapshot(org.api) == mine


SCOPED = [op for op in OPERATIONS if ("body", "scopes") in request_fields(op)]


def test_every_operation_taking_scopes_is_found() -> None:
    assert {op.id for op in SCOPED} >= {"POST /v1/keys", "POST /v1/apps", "PATCH /v1/apps/{app_id}"}


@pytest.mark.parametrize("op", SCOPED, ids=[op.id for op in SCOPED])
def test_a_scope_of_another_organizations_resource_is_like_one_of_no_resource(
    org: Org, other_org: Org, op: Operation
) -> None:
    ids = targets(org.api, op)
    theirs = {"name": FACTORIES["name"](other_org.api)}
    absent = {"name": NEVER["name"]()}
    before, mine = snapshot(other_org.api), snapshot(org.api)

    def send(resource: str) -> httpx.Response:
        payload = body(op)
        assert payload is not None
        payload["scopes"] = [f"{resource}:read"]
        return call(org.api, op, ids, payload)

    answer, never_answer = send(theirs["name"]), send(absent["name"])

    assert answer.status_code == never_answer.status_code, answer.text
    assert _as_placeholders(answer, theirs) == _as_placeholders(never_answer, absent)
    if op.id != "POST /v1/keys/verify":  # granting: refused, naming the scope
        problem(answer, 422, "scopes[0]")
    assert snapshot(other_org.api) == before
    assert snapshot(org.api) == mine
