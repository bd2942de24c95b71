"""Mass assignment, proven absent: every read-only or foreign field injected into every write
is a 422 naming it, and changes nothing; and every 2xx answer carries only the fields its
OpenAPI schema declares (nothing internal leaks out through a response either).

The writes come from the API's OpenAPI document, so a new operation with a body joins the
matrix on its own (and fails until ``support.operations.BODIES`` has a valid body for it).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from keyplane.domain.ids import new_id

from conftest import Org
from support import problem
from support.operations import (
    ADMITTING,
    BODIES,
    FACTORIES,
    NESTED,
    OPERATIONS,
    PRESENTED_KEY,
    SIGNED,
    Operation,
    body,
    call,
    request_fields,
    response_schema,
    snapshot,
    streams,
    targets,
    undeclared,
)

WRITES = [op for op in OPERATIONS if op.has_body and op.id not in SIGNED]
UNSIGNED = [op for op in OPERATIONS if op.id not in SIGNED]
PAST = "2020-01-01T00:00:00+00:00"

# Fields a client must never set: identity, ownership, timestamps, secrets and what is
# derived from them, and states only the server reaches.
INJECTED: dict[str, Any] = {
    "id": new_id("key"),
    "org_id": new_id("org"),
    "created_at": PAST,
    "updated_at": PAST,
    "created_by": new_id("usr"),
    "digest": "0" * 64,
    "digest_version": 2,
    "key": "kp_live_" + "A" * 38,
    "client_id": new_id("key"),
    "client_secret": "kp_live_" + "B" * 38,
    "masked_key": "kp_live_…AAAA",
    "full_access": True,
    "effective_scopes": ["*"],
    "last_used_at": PAST,
    "status": "expired",
    "key_count": 0,
    "builtin": True,
    "has_password": True,
    "password_hash": "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
    "set_password_url": "/console/set-password/forged",
    "setup_token": "forged",
    "role": "owner",
    "owner_id": new_id("usr"),
    "warning": "",
}


def _injections(op: Operation) -> dict[str, Any]:
    """What to inject into ``op``: each foreign field it does not declare, and each declared
    one whose injected value is a state only the server may reach."""
    declared = {name for where, name in request_fields(op) if where == "body"}
    chosen = {name: value for name, value in INJECTED.items() if name not in declared}
    if "status" in declared:
        chosen["status"] = "expired"
    return chosen


def test_every_write_has_a_valid_body_and_something_to_inject() -> None:
    assert len(WRITES) >= 11  # the route table was really read
    assert {op.id for op in WRITES} - BODIES.keys() == set()
    assert all(len(_injections(op)) >= 15 for op in WRITES)


@pytest.mark.parametrize("op", WRITES, ids=[op.id for op in WRITES])
def test_every_foreign_field_injected_into_a_write_is_a_422_naming_it(
    org: Org, op: Operation
) -> None:
    ids = targets(org.api, op)
    before = snapshot(org.api)

    for field, value in _injections(op).items():
        payload = body(op)
        assert payload is not None
        payload[field] = value
        response = call(org.api, op, ids, payload)
        answer = problem(response, 422, field)
        assert answer["type"] == "urn:keyplane:problem:validation-error", field

    assert snapshot(org.api) == before


def _seeded(org: Org, op: Operation) -> None:
    """One object in the list ``op`` reads, so the items' schema is checked too."""
    if op.collection == "/v1/analytics":  # one counted call, written now rather than soon
        org.api.get("/v1/org")
        org.server.kp.counter.flush()
        return
    for other in OPERATIONS:
        if other.collection == op.collection and other.params:
            FACTORIES[other.params[-1]](org.api)
            return


@pytest.mark.parametrize("op", UNSIGNED, ids=[op.id for op in UNSIGNED])
def test_every_2xx_answer_carries_only_documented_fields(org: Org, op: Operation) -> None:
    ids = targets(org.api, op)
    payload = body(op)
    if op.id == "POST /v1/keys/verify":  # a VALID verdict carries the most fields
        profile = FACTORIES["profile_id"](org.api)
        made = org.api.create_key(profile_id=profile, metadata={"plan": "pro"}, scopes=["apps:*"])
        payload = {"key": made["key"], "scopes": ["apps:read"]}
    elif not op.params:
        _seeded(org, op)
    elif op.id == "GET /v1/webhooks/{webhook_id}/deliveries":  # a list under its webhook
        NESTED["delivery_id"][1](org.api, ids["webhook_id"])
    elif op.id == "GET /v1/keys/{key_id}/children":  # a child of the calling key
        made = org.api.post(f"/v1/keys/{ids['key_id']}/children", json={"name": "child"})
        assert made.status_code == 201, made.text

    headers = {}
    if op.id in PRESENTED_KEY:  # the owner's key, let through by the organization's rules
        assert org.api.patch("/v1/org", json=ADMITTING[op.id]).status_code == 200
        headers = PRESENTED_KEY[op.id](org.id)

    if op.form:  # the token endpoint: the owner key's id and key as client credentials
        response = org.api.http.post(
            op.path,
            data={"grant_type": "client_credentials"},
            auth=(org.owner_key_id, org.api.key),
        )
    else:
        response = call(org.api, op, ids, payload, headers=headers)

    assert 200 <= response.status_code < 300, response.text
    schema = response_schema(op, response.status_code)
    if response.status_code == 204:
        assert response.content == b""
        return
    if streams(op):  # never ends: test_events_stream.py reads what it carries
        assert response.headers["content-type"].startswith("text/event-stream")
        return
    if response.headers["content-type"] == "application/jsonl":  # an export: each line
        lines = [json.loads(line) for line in response.text.splitlines()]
        assert lines, "an empty export checks no item"
        assert schema is not None
        assert [undeclared(schema, line) for line in lines] == [[]] * len(lines)
        return
    answer = response.json()
    if schema is not None:
        assert undeclared(schema, answer) == []
    if isinstance(answer, dict) and "data" in answer:
        assert answer["data"], "an empty list checks no item"
