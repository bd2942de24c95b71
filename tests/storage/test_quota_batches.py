"""KeyRepository.record_quota with several processes each sending the spends they made,
tagged with the refill instant they were made under (redislimits.py): the stored count
follows whatever order the batches arrive in."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.ratelimits import Quota, Refill
from keyplane.settings import Settings

from conftest import TEST_SECRET

YESTERDAY = datetime(2026, 11, 29, tzinfo=UTC)
TODAY = datetime(2026, 11, 30, tzinfo=UTC)
DAILY = Refill(10, "daily")


@pytest.fixture
def kp(database_url: str) -> Iterator[Keyplane]:
    kp = build(Settings(database_url=database_url, secret_key=TEST_SECRET))
    yield kp
    kp.close()


def _key_with(kp: Keyplane, quota: Quota) -> str:
    made = kp.orgs.create("Quota org", "owner@example.com")
    with kp.store.transaction() as tx:
        tx.keys.set_quota(made.org.id, made.key_id, quota)
    return made.key_id


@pytest.mark.parametrize("order", ["a then b", "b then a"])
def test_two_nodes_batches_after_a_refill_add_up_in_any_order(kp: Keyplane, order: str) -> None:
    key_id = _key_with(kp, Quota(1, DAILY, YESTERDAY))
    a = {key_id: (3, TODAY, 10)}  # node A applied today's refill, then spent 3
    b = {key_id: (2, TODAY, 10)}  # node B spent 2 after it, under the same refill
    for batch in (a, b) if order == "a then b" else (b, a):
        kp.store.record_quota(batch)
    assert kp.store.stored_quota(key_id) == Quota(5, DAILY, TODAY)


def test_spends_made_before_the_stored_refill_are_ignored(kp: Keyplane) -> None:
    key_id = _key_with(kp, Quota(1, DAILY, YESTERDAY))
    kp.store.record_quota({key_id: (4, TODAY, 10)})
    kp.store.record_quota({key_id: (1, YESTERDAY, 10)})  # a late batch from before it
    assert kp.store.stored_quota(key_id) == Quota(6, DAILY, TODAY)


def test_spends_without_a_refill_are_subtracted_never_below_zero(kp: Keyplane) -> None:
    key_id = _key_with(kp, Quota(5))
    kp.store.record_quota({key_id: (3, None, 0)})
    kp.store.record_quota({key_id: (4, None, 0)})
    assert kp.store.stored_quota(key_id) == Quota(0)
