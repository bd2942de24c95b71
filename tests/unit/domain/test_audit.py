"""The audit catalogue names every action the code writes; the canonical form and the chain
checker are the rules ``keyplane audit verify`` relies on."""

from __future__ import annotations

import ast
import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import keyplane.services
from keyplane.domain.audit import (
    ACTIONS,
    CANONICAL_FIELDS,
    GENESIS,
    AuditQuery,
    ChainChecker,
    canonical,
    event_hash,
)
from keyplane.domain.errors import InvalidInput
from keyplane.domain.models import AuditEvent

SERVICES = Path(keyplane.services.__file__).parent
T0 = datetime(2026, 11, 30, 16, 0, tzinfo=UTC)


def _written_actions() -> dict[str, list[str]]:
    """Every ``record(tx, principal, now, "<action>", …)`` call in the services."""
    found: dict[str, list[str]] = {}
    for path in sorted(SERVICES.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "record":
                action = node.args[3]
                assert isinstance(action, ast.Constant), f"{path.name}:{node.lineno}"
                found.setdefault(str(action.value), []).append(f"{path.name}:{node.lineno}")
    return found


def test_every_action_the_services_write_is_in_the_catalogue() -> None:
    written = _written_actions()
    assert len(written) > 10
    assert {a: where for a, where in written.items() if a not in ACTIONS} == {}


def test_the_catalogue_names_only_actions_that_are_written() -> None:
    assert set(ACTIONS) - set(_written_actions()) == set()


@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_action_names_are_dotted_lowercase_with_a_description(action: str) -> None:
    target, _, verb = action.partition(".")
    assert (target.isidentifier(), verb.isidentifier(), action.islower()) == (True, True, True)
    assert ACTIONS[action].endswith(".")


def _event(seq: int = 1, prev_hash: str = GENESIS, **changed: object) -> AuditEvent:
    made = AuditEvent(
        id=f"evt_{seq:026d}",
        org_id="org_01aaaaaaaaaaaaaaaaaaaaaaaa",
        actor="key_01bbbbbbbbbbbbbbbbbbbbbbbb",
        action="app.update",
        target_type="app",
        target_id="app_01cccccccccccccccccccccccc",
        details={},
        created_at=T0 + timedelta(seconds=seq),
        actor_type="key",
        actor_name="deployer",
        target_name="billing",
        client_ip="203.0.113.7",
        user_agent="curl/8.5",
        changes={"description": {"before": "", "after": "Invoices"}},
        seq=seq,
        prev_hash=prev_hash,
    )
    made = replace(made, **changed)  # type: ignore[arg-type]
    return replace(made, hash=event_hash(_values(made)))


def _values(event: AuditEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in CANONICAL_FIELDS}


def test_the_canonical_form_is_sorted_compact_json_of_the_listed_fields() -> None:
    event = _event()
    text = canonical(_values(event)).decode()
    assert text.startswith('{"action":"app.update","actor":"key_01')
    assert (", " in text, ": " in text) == (False, False)
    assert '"created_at":"2026-11-30T16:00:01.000000Z"' in text
    assert event.hash == hashlib.sha256(text.encode()).hexdigest()


def test_the_canonical_form_does_not_depend_on_the_time_zone_given() -> None:
    event = _event()
    elsewhere = event.created_at.astimezone(timezone(timedelta(hours=9)))
    assert canonical(_values(event)) == canonical({**_values(event), "created_at": elsewhere})


def test_the_canonical_form_is_stable_across_releases() -> None:
    """A changed hash here would break every stored chain: version the form instead."""
    assert event_hash(_values(_event())) == _event().hash
    assert _event().hash == KNOWN_HASH


KNOWN_HASH = "b940f54ef02e3c9eae0354114792d0793fc1eaac9a2cfecb861747a70d56a397"


def _chain(n: int) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    for seq in range(1, n + 1):
        events.append(_event(seq, events[-1].hash if events else GENESIS))
    return events


def _first_break(events: list[AuditEvent], head: tuple[int, str]) -> str | None:
    checker = ChainChecker("org_01aaaaaaaaaaaaaaaaaaaaaaaa", *head)
    for event in events:
        found = checker.feed(event)
        if found is not None:
            return f"{found.problem}@{found.seq}"
    found = checker.finish()
    return f"{found.problem}@{found.seq}" if found else None


def test_an_intact_chain_and_an_empty_one_hold() -> None:
    events = _chain(5)
    assert _first_break(events, (5, events[-1].hash)) is None
    assert _first_break([], (0, GENESIS)) is None


@given(st.integers(min_value=3, max_value=12), st.data())
def test_any_single_tampering_is_found_at_its_place(n: int, data: st.DataObject) -> None:
    events = _chain(n)
    head = (n, events[-1].hash)
    at = data.draw(st.integers(min_value=0, max_value=n - 1))
    altered = [*events]
    altered[at] = replace(events[at], actor_name="someone else")
    assert _first_break(altered, head) == f"altered@{at + 1}"
    removed = events[:at] + events[at + 1 :]
    assert _first_break(removed, head) == f"removed@{at + 2 if at < n - 1 else at + 1}"
    forged = _event(n + 1, events[-1].hash, action="key.delete")
    assert _first_break([*events, forged], head) == f"inserted@{n + 1}"


@pytest.mark.parametrize(
    ("query", "field"),
    [
        (AuditQuery(action="key.explode"), "action"),
        (AuditQuery(action="spaceship."), "action"),
        (AuditQuery(target_id="app_\x00"), "target_id"),
        (AuditQuery(actor_id=""), "actor_id"),
        (AuditQuery(since=datetime(2026, 11, 30)), "from"),  # noqa: DTZ001 - naive on purpose
        (AuditQuery(since=T0, until=T0 - timedelta(seconds=1)), "from"),
    ],
)
def test_a_query_that_cannot_match_names_the_filter(query: AuditQuery, field: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        query.checked()
    assert [e.field for e in raised.value.errors] == [field]


@pytest.mark.parametrize("action", ["key.", "user.", "key.update", "user.sign_in_failed"])
def test_an_action_or_a_prefix_of_the_catalogue_is_a_valid_filter(action: str) -> None:
    assert AuditQuery(action=action, since=T0, until=T0).checked().action == action
