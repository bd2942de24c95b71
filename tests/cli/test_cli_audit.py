"""``keyplane audit verify``: an intact log passes; an event altered, removed or inserted with
real SQL behind keyplane's back is found and named, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from keyplane.app import build
from keyplane.cli.main import app
from keyplane.services.apps import AppChanges
from keyplane.services.keys import NewKey
from keyplane.settings import Settings
from keyplane.storage.engine import make_engine

from conftest import TEST_SECRET

runner = CliRunner()


@dataclass
class Log:
    url: str
    org_id: str
    other_org_id: str
    events: list[tuple[int, str]]  # (seq, id) of the first organization, in order
    engine: Engine


@pytest.fixture
def log(database_url: str) -> Iterator[Log]:
    """Two organizations, the first with a handful of events."""
    kp = build(Settings(database_url=database_url, secret_key=TEST_SECRET))
    made = kp.orgs.create("Acme", "ada@acme.io")
    other = kp.orgs.create("Globex", "hank@globex.io")
    owner = kp.verifier.authenticate(made.api_key)
    app_ = kp.apps.create(owner, "billing")
    kp.apps.update(owner, app_.id, AppChanges(description="Invoices"))
    kp.keys.create(owner, NewKey(name="worker", app_id=app_.id))
    kp.close()
    engine = make_engine(database_url)
    with engine.connect() as conn:
        events = [
            (int(seq), str(id_))
            for seq, id_ in conn.execute(
                text("SELECT seq, id FROM audit_events WHERE org_id = :o ORDER BY seq"),
                {"o": made.org.id},
            )
        ]
    yield Log(database_url, made.org.id, other.org.id, events, engine)
    engine.dispose()


def verify(log: Log, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        ["audit", "verify", "--database-url", log.url, *args],
        env={"KEYPLANE_SECRET_KEY": TEST_SECRET},
    )
    return result.exit_code, result.output


def test_an_untouched_log_verifies(log: Log) -> None:
    assert len(log.events) >= 4
    code, output = verify(log)
    assert (code, "audit log intact" in output) == (0, True), output


def test_an_altered_event_is_named(log: Log) -> None:
    seq, event_id = log.events[2]
    with log.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET actor_name = 'someone else' WHERE id = :id"),
            {"id": event_id},
        )
    code, output = verify(log)
    assert code == 1
    assert f"event {event_id} (seq {seq}) altered" in output, output


def test_a_removed_event_is_named_by_its_sequence_number(log: Log) -> None:
    seq, event_id = log.events[1]
    following = log.events[2][1]
    with log.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event_id})
    code, output = verify(log)
    assert code == 1
    assert f"event {following} (seq {seq + 1}) removed: seq {seq} missing before it" in output


def test_removing_the_last_event_is_found_through_the_chain_head(log: Log) -> None:
    seq, event_id = log.events[-1]
    with log.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE id = :id"), {"id": event_id})
    code, output = verify(log)
    assert code == 1
    assert f"seq {seq} removed: seq {seq} missing at the end" in output, output


@pytest.mark.parametrize("copied_hash", [False, True], ids=["made-up hash", "copied hash"])
def test_an_inserted_event_is_named(log: Log, copied_hash: bool) -> None:
    """A row slipped in after the head, with a made-up hash or one copied from a real event."""
    last_seq, last_id = log.events[-1]
    with log.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO audit_events (id, org_id, actor, action, target_type, target_id, "
                "details, created_at, actor_type, actor_name, target_name, client_ip, "
                "user_agent, changes, seq, prev_hash, hash) "
                "SELECT 'evt_forged', org_id, actor, 'key.delete', target_type, target_id, "
                "details, created_at, actor_type, actor_name, target_name, client_ip, "
                "user_agent, changes, seq + 1, hash, COALESCE(:made_up, hash) "
                "FROM audit_events WHERE id = :id"
            ),
            {"id": last_id, "made_up": None if copied_hash else "f" * 64},
        )
    code, output = verify(log)
    assert code == 1
    assert f"event evt_forged (seq {last_seq + 1}) inserted" in output, output


def test_an_event_moved_to_another_organization_breaks_both_chains(log: Log) -> None:
    seq, event_id = log.events[1]
    with log.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET org_id = :o, seq = 99 WHERE id = :id"),
            {"o": log.other_org_id, "id": event_id},
        )
    code, output = verify(log)
    assert code == 1
    assert f"{log.org_id}: event {log.events[2][1]} (seq {seq + 1}) removed" in output
    assert f"{log.other_org_id}: event {event_id} (seq 99) inserted" in output


def test_org_limits_the_check_to_one_organization(log: Log) -> None:
    with log.engine.begin() as conn:
        conn.execute(
            text("UPDATE audit_events SET action = 'key.delete' WHERE id = :id"),
            {"id": log.events[0][1]},
        )
    assert verify(log, "--org", log.other_org_id)[0] == 0
    assert verify(log, "--org", log.org_id)[0] == 1
