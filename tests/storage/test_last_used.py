"""Key rows written by background batches: last-used times written by several nodes at once
without deadlocks and without moving a time backwards."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.scopes import ScopeSet
from keyplane.services.common import Principal
from keyplane.services.keys import NewKey
from keyplane.settings import Settings

from conftest import TEST_SECRET

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def kp(database_url: str) -> Iterator[Keyplane]:
    built = build(Settings(database_url=database_url, secret_key=TEST_SECRET))
    yield built
    built.close()


def _keys(kp: Keyplane, count: int) -> tuple[str, list[str]]:
    created = kp.orgs.create("Flushers", "flush@example.com")
    owner = Principal(created.org.id, created.owner.id, ScopeSet.full())
    ids = [created.key_id]
    ids += [kp.keys.create(owner, NewKey(name=f"k{i}")).view.key.id for i in range(count - 1)]
    return created.org.id, ids


def _last_used(kp: Keyplane, org_id: str, key_id: str) -> datetime | None:
    with kp.store.read() as tx:
        key = tx.keys.get(org_id, key_id)
    assert key is not None
    return key.last_used_at


def test_an_older_flush_after_a_newer_one_leaves_the_newer_time(kp: Keyplane) -> None:
    org_id, (first, second) = _keys(kp, 2)
    kp.store.record_last_used({first: T0 + timedelta(minutes=5), second: T0}, {})
    # A node whose batch is older (flushed late, or its clock behind) writes after.
    kp.store.record_last_used({first: T0, second: T0 + timedelta(minutes=1)}, {})
    assert _last_used(kp, org_id, first) == T0 + timedelta(minutes=5)
    assert _last_used(kp, org_id, second) == T0 + timedelta(minutes=1)


def test_a_first_use_is_written(kp: Keyplane) -> None:
    org_id, (key_id,) = _keys(kp, 1)
    assert _last_used(kp, org_id, key_id) is None
    kp.store.record_last_used({key_id: T0}, {})
    assert _last_used(kp, org_id, key_id) == T0


@pytest.mark.postgres
def test_concurrent_flushes_over_the_same_keys_in_opposite_orders_do_not_deadlock(
    postgres_url: str,
) -> None:
    from conftest import POSTGRES_ADMIN_URL
    from support.databases import fresh_postgres

    with fresh_postgres(POSTGRES_ADMIN_URL, "keyplane_flushers") as url:
        kp = build(Settings(database_url=url, secret_key=TEST_SECRET))
        try:
            org_id, ids = _keys(kp, 200)
            rounds = 15
            failures: list[BaseException] = []
            start = threading.Barrier(2)

            def node(order: list[str], offset: int) -> None:
                for round_ in range(rounds):
                    start.wait()
                    at = T0 + timedelta(seconds=2 * round_ + offset)
                    try:
                        # Dicts keep their insertion order: each node's batch comes in the
                        # order its verifications did, the other's reversed.
                        kp.store.record_last_used(dict.fromkeys(order, at), {})
                    except BaseException as exc:  # a deadlock is StorageUnavailable here
                        failures.append(exc)

            threads = [
                threading.Thread(target=node, args=(ids, 0)),
                threading.Thread(target=node, args=(ids[::-1], 1)),
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=120)
            assert failures == []
            newest = T0 + timedelta(seconds=2 * (rounds - 1) + 1)
            assert {_last_used(kp, org_id, k) for k in ids} == {newest}
        finally:
            kp.close()
