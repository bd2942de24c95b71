"""The lifecycle reaches webhooks: the expiry jobs' warnings, expiries and rotation
reminders, and a rotation, arrive at a real receiver signed as Standard Webhooks, each once,
on SQLite and PostgreSQL, with the clock injected."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import Principal
from keyplane.services.keys import NewKey
from keyplane.services.orgs import OrgChanges
from keyplane.settings import Settings

from conftest import TEST_SECRET, Clock
from support.receiver import Receiver

DAY = timedelta(days=1)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kp(database_url: str, clock: Clock) -> Iterator[Keyplane]:
    made = build(
        Settings(database_url=database_url, secret_key=TEST_SECRET, run_jobs=False), clock=clock
    )
    yield made
    made.close()


@pytest.fixture
def owner(kp: Keyplane) -> Principal:
    made = kp.orgs.create("Acme", "owner@acme.example")
    return Principal(made.org.id, made.owner.id, ScopeSet.full(), actor_name="Owner")


@dataclass
class Subscribed:
    owner: Principal
    secret: str


@pytest.fixture
def subscribed(kp: Keyplane, owner: Principal, receiver: Receiver) -> Subscribed:
    events = ["key.expiring", "key.expired", "key.rotation_due", "key.rotated"]
    return Subscribed(owner, kp.webhooks.create(owner, receiver.url, events).secret)


def run_jobs(kp: Keyplane, receiver: Receiver, hook: Subscribed, key_id: str) -> list[str]:
    """Every job, as the runner does, until nothing more arrives; the types of the messages
    about ``key_id`` received so far, each verified with the webhook's secret (the
    organization's first key, made with it, has messages of its own)."""
    seen = -1
    while seen != len(receiver.received):
        seen = len(receiver.received)
        kp.jobs.run_once()
    payloads = [r.verified(hook.secret) for r in receiver.received]
    return [p["type"] for p in payloads if p["data"]["id"] == key_id]


def test_each_expiry_warning_then_the_expiry_arrive_once(
    kp: Keyplane, subscribed: Subscribed, receiver: Receiver, clock: Clock
) -> None:
    key = kp.keys.create(subscribed.owner, NewKey(name="ci", expires_in_days=10)).view.key

    clock.advance(timedelta(days=4))  # six days left: inside the 7-day threshold
    assert run_jobs(kp, receiver, subscribed, key.id) == ["key.expiring"]
    assert run_jobs(kp, receiver, subscribed, key.id) == ["key.expiring"]  # once

    clock.advance(timedelta(days=5, hours=12))  # half a day left
    assert run_jobs(kp, receiver, subscribed, key.id) == ["key.expiring"] * 2

    clock.advance(DAY)
    types = run_jobs(kp, receiver, subscribed, key.id)
    assert types == ["key.expiring", "key.expiring", "key.expired"]
    first = receiver.received[0].verified(subscribed.secret)
    assert first["data"]["threshold_days"] == 7
    assert first["data"]["actor"]["type"] == "system"


def test_a_rotation_reminder_then_the_rotation_arrive(
    kp: Keyplane, subscribed: Subscribed, receiver: Receiver, clock: Clock
) -> None:
    kp.orgs.update(subscribed.owner, OrgChanges(rotation_period_days=30))
    old = kp.keys.create(subscribed.owner, NewKey(name="deploy")).view.key
    clock.advance(timedelta(days=31))
    assert run_jobs(kp, receiver, subscribed, old.id) == ["key.rotation_due"]

    kp.rotation.rotate(subscribed.owner, old.id, grace_period_seconds=3600)

    assert run_jobs(kp, receiver, subscribed, old.id) == ["key.rotation_due", "key.rotated"]
    for received in receiver.received:
        assert "kp_live_" not in received.body.decode()
