"""The cache TTL, the last safety net: a record older than the TTL is answered once more
from the cache (the request never waits for the database) while it is reloaded in the
background, and the answers after the reload are the store's."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest

from keyplane.app import build
from keyplane.container import Keyplane
from keyplane.domain.errors import StorageUnavailable, Unauthenticated
from keyplane.domain.tokens import KeyHasher
from keyplane.services.common import Principal
from keyplane.services.keys import NewKey
from keyplane.services.verifying import Verifier
from keyplane.settings import Settings

from conftest import TEST_SECRET, Clock

TTL = timedelta(seconds=30)


class Background:
    """Work handed to the background, run only when the test says so."""

    def __init__(self) -> None:
        self.tasks: list[Callable[[], None]] = []

    def __call__(self, task: Callable[[], None]) -> None:
        self.tasks.append(task)

    def run(self) -> None:
        tasks, self.tasks = self.tasks, []
        for task in tasks:
            task()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def kp(tmp_path: Path, clock: Clock) -> Iterator[Keyplane]:
    built = build(
        Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", secret_key=TEST_SECRET),
        clock=clock,
    )
    yield built
    built.close()


@pytest.fixture
def background() -> Background:
    return Background()


@pytest.fixture
def verifier(kp: Keyplane, clock: Clock, background: Background) -> Verifier:
    hasher = KeyHasher(TEST_SECRET.encode())
    return Verifier(
        kp.store,
        hasher,
        kp.cache,
        clock,
        kp.usage,
        kp.counter,
        kp.limiter,
        ttl=TTL,
        background=background,
    )


def _key(kp: Keyplane) -> tuple[Principal, str, str]:
    made = kp.orgs.create("TTL", "ttl@example.com")
    owner = kp.verifier.authenticate(made.api_key)
    issued = kp.keys.create(owner, NewKey(name="cached"))
    return owner, issued.view.key.id, issued.secret


def _disable_behind_the_caches_back(kp: Keyplane, owner: Principal, key_id: str) -> None:
    """A change whose notice never arrived: the store changes, the cache is not told."""
    with kp.store.transaction() as tx:
        key = tx.keys.get(owner.org_id, key_id)
        assert key is not None
        tx.keys.update(replace(key, stored_status="inactive"))


def test_a_stale_record_is_served_once_without_waiting_then_the_reloaded_one(
    kp: Keyplane, verifier: Verifier, clock: Clock, background: Background
) -> None:
    owner, key_id, secret = _key(kp)
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    _disable_behind_the_caches_back(kp, owner, key_id)
    clock.advance(TTL - timedelta(seconds=1))
    assert verifier.verify(owner.org_id, secret).code == "VALID"  # within the TTL: trusted
    assert background.tasks == []

    clock.advance(timedelta(seconds=2))
    # Stale: answered from the cache at once, the reload handed to the background.
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    assert len(background.tasks) == 1
    # Further requests before the reload ends do not queue another one.
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    assert len(background.tasks) == 1

    background.run()
    assert verifier.verify(owner.org_id, secret).code == "DISABLED"
    assert background.tasks == []  # the reloaded record is fresh for another TTL


def test_a_stale_record_of_a_deleted_key_is_forgotten_by_its_reload(
    kp: Keyplane, verifier: Verifier, clock: Clock, background: Background
) -> None:
    owner, key_id, secret = _key(kp)
    entry = verifier.load(secret)
    assert entry is not None
    with kp.store.transaction() as tx:  # deleted, and no notice arrived
        tx.keys.delete(owner.org_id, key_id)
    clock.advance(TTL)
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    background.run()
    assert kp.cache.get(entry.digest) is None
    assert verifier.verify(owner.org_id, secret).code == "NOT_FOUND"


def test_the_caller_of_the_api_is_revalidated_too(
    kp: Keyplane, verifier: Verifier, clock: Clock, background: Background
) -> None:
    owner, key_id, secret = _key(kp)
    verifier.authenticate(secret)
    _disable_behind_the_caches_back(kp, owner, key_id)
    clock.advance(TTL)
    verifier.authenticate(secret)  # served from the stale record
    background.run()
    with pytest.raises(Unauthenticated, match="disabled"):
        verifier.authenticate(secret)


def test_a_reload_that_cannot_reach_the_database_keeps_the_record_and_retries_later(
    kp: Keyplane, clock: Clock, background: Background, caplog: pytest.LogCaptureFixture
) -> None:
    owner, _, secret = _key(kp)

    class Down:
        def read(self) -> object:
            raise StorageUnavailable

    hasher = KeyHasher(TEST_SECRET.encode())
    warm = Verifier(kp.store, hasher, kp.cache, clock, kp.usage, kp.counter, kp.limiter, ttl=TTL)
    entry = warm.load(secret)
    assert entry is not None
    down = Verifier(
        Down(),  # type: ignore[arg-type]
        hasher,
        kp.cache,
        clock,
        kp.usage,
        kp.counter,
        kp.limiter,
        ttl=TTL,
        background=background,
    )
    clock.advance(TTL)
    assert down.verify(owner.org_id, secret).code == "VALID"
    background.run()
    assert kp.cache.get(entry.digest) is entry
    assert "could not revalidate" in caplog.text
    down.verify(owner.org_id, secret)
    assert len(background.tasks) == 1  # tried again on the next use


def test_by_default_the_reload_runs_on_a_thread_of_its_own(kp: Keyplane, clock: Clock) -> None:
    owner, key_id, secret = _key(kp)
    hasher = KeyHasher(TEST_SECRET.encode())
    verifier = Verifier(
        kp.store, hasher, kp.cache, clock, kp.usage, kp.counter, kp.limiter, ttl=TTL
    )
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    _disable_behind_the_caches_back(kp, owner, key_id)
    clock.advance(TTL)
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    deadline = time.monotonic() + 5
    while verifier.verify(owner.org_id, secret).code != "DISABLED":
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_the_ttl_comes_from_the_settings(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'k.db'}", cache_ttl_seconds=5)
    assert settings.cache_ttl_seconds == 5
    assert Settings().cache_ttl_seconds == 30


def test_a_stale_record_is_still_answered_while_the_process_shuts_down(
    kp: Keyplane, clock: Clock
) -> None:
    owner, _, secret = _key(kp)

    def closed(_task: Callable[[], None]) -> None:
        raise RuntimeError("cannot schedule new futures after shutdown")

    hasher = KeyHasher(TEST_SECRET.encode())
    verifier = Verifier(
        kp.store,
        hasher,
        kp.cache,
        clock,
        kp.usage,
        kp.counter,
        kp.limiter,
        ttl=TTL,
        background=closed,
    )
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    clock.advance(TTL)
    assert verifier.verify(owner.org_id, secret).code == "VALID"
    assert verifier.verify(owner.org_id, secret).code == "VALID"  # and asks again each time
