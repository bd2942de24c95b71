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
    answer: dict[str, Any] = httpx.Response(200, content=text).json()
    return answer


@pytest.mark.parametrize("op", ID_OPERATIONS, ids=[op.id for op in ID_OPERATIONS])
def test_another_organizations_object_is_a_404_like_an_id_that_never_existed(
    org: Org, other_org: Org, op: Operation
) -> None:
    theirs = targets(other_org, op)
    before = snapshot(other_org)
    payload = body(op)

    answer = call(org.api, op, theirs, payload)
    absent_ids = never(op)
    absent = call(org.api, op, absent_ids, payload)

    problem(answer, 404)
    problem(absent, 404)
    assert _as_placeholders(answer, theirs) == _as_placeholders(absent, absent_ids)
    assert answer.headers["content-type"] == absent.headers["content-type"]
    assert snapshot(other_org) == before
    # Their own owner still reaches the object: it was not found, not destroyed.
    if op.method == "GET":
        assert call(other_org.api, op, theirs).status_code == 200
