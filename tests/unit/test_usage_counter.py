"""BufferedUsageCounter: counts per key, minute and outcome in memory, handed over in batches;
a failing write never reaches the caller and loses no count while memory allows."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.scopes import ScopeSet
from keyplane.domain.usage import UsageTally
from keyplane.domain.verification import CachedKey
from keyplane.usage import BufferedUsageCounter, NullUsageCounter

NOW = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)
MINUTE = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def key(key_id: str = "key_1", app_id: str | None = "app_1") -> CachedKey:
    return CachedKey(
        key_id=key_id,
        org_id="org_1",
        app_id=app_id,
        profile_id=None,
        stored_status="active",
        expires_at=None,
        scopes=ScopeSet.full(),
        profile=None,
        metadata={},
        environment="live",
    )


class Writer:
    def __init__(self, failures: int = 0) -> None:
        self.batches: list[list[UsageTally]] = []
        self.failures = failures
        self.called = threading.Event()

    def __call__(self, tallies: Sequence[UsageTally]) -> None:
        self.called.set()
        if self.failures:
            self.failures -= 1
            raise RuntimeError("the database is down")
        self.batches.append(list(tallies))

    def totals(self) -> Counter[tuple[str | None, str, datetime]]:
        totals: Counter[tuple[str | None, str, datetime]] = Counter()
        for batch in self.batches:
            for t in batch:
                totals[t.key_id, t.outcome, t.minute] += t.count
        return totals


def counter(writer: Writer, **kwargs: float) -> BufferedUsageCounter:
    return BufferedUsageCounter(writer, clock=lambda: NOW, **kwargs)  # type: ignore[arg-type]


def test_counts_are_summed_per_key_minute_and_outcome() -> None:
    writer = Writer()
    usage = counter(writer)
    one, two = key("key_1"), key("key_2", app_id=None)

    usage.count("org_1", one, "VALID", NOW)
    usage.count("org_1", one, "VALID", NOW + timedelta(seconds=29))
    usage.count("org_1", one, "INSUFFICIENT_SCOPE", NOW)
    usage.count("org_1", one, "VALID", NOW + timedelta(seconds=30))  # the next minute
    usage.count("org_1", two, "DISABLED", NOW)
    usage.count("org_1", None, "NOT_FOUND", NOW)
    usage.flush()

    assert sorted(writer.batches[0], key=repr) == sorted(
        [
            UsageTally("org_1", "key_1", "app_1", "VALID", MINUTE, 2),
            UsageTally("org_1", "key_1", "app_1", "INSUFFICIENT_SCOPE", MINUTE, 1),
            UsageTally("org_1", "key_1", "app_1", "VALID", MINUTE + timedelta(minutes=1), 1),
            UsageTally("org_1", "key_2", None, "DISABLED", MINUTE, 1),
            UsageTally("org_1", None, None, "NOT_FOUND", MINUTE, 1),
        ],
        key=repr,
    )


@given(
    calls=st.lists(
        st.tuples(
            st.sampled_from(["key_1", "key_2"]),
            st.sampled_from(["VALID", "EXPIRED"]),
            st.integers(min_value=0, max_value=300),
        ),
        max_size=30,
    ),
    flush_after=st.integers(min_value=0, max_value=30),
)
def test_every_count_is_handed_over_exactly_once(
    calls: list[tuple[str, str, int]], flush_after: int
) -> None:
    writer = Writer()
    usage = counter(writer)
    records = {"key_1": key("key_1"), "key_2": key("key_2")}
    expected: Counter[tuple[str | None, str, datetime]] = Counter()
    for index, (key_id, outcome, seconds) in enumerate(calls):
        if index == flush_after:
            usage.flush()
        at = NOW + timedelta(seconds=seconds)
        usage.count("org_1", records[key_id], outcome, at)
        expected[key_id, outcome, at.replace(second=0, microsecond=0)] += 1
    usage.flush()
    usage.flush()

    assert writer.totals() == expected


def test_a_flush_with_nothing_pending_does_not_call_the_writer() -> None:
    writer = Writer()

    counter(writer).flush()

    assert writer.batches == []
    assert not writer.called.is_set()


def test_a_failed_write_is_logged_and_its_counts_go_with_the_next_batch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Writer(failures=1)
    usage = counter(writer)
    usage.count("org_1", key(), "VALID", NOW)

    with caplog.at_level(logging.ERROR, logger="keyplane.usage"):
        usage.flush()  # raises nothing
    usage.count("org_1", key(), "VALID", NOW)
    usage.flush()

    assert "could not record usage" in caplog.text
    assert writer.totals() == {("key_1", "VALID", MINUTE): 2}


def test_counts_beyond_the_memory_bound_are_dropped_during_an_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    writer = Writer(failures=1)
    usage = counter(writer, max_pending=1)
    usage.count("org_1", key("key_1"), "VALID", NOW)
    usage.count("org_1", key("key_2"), "VALID", NOW)

    with caplog.at_level(logging.ERROR, logger="keyplane.usage"):
        usage.flush()
    usage.flush()

    assert "dropped 2 counts" in caplog.text
    assert writer.batches == []


def test_the_thread_flushes_by_itself_and_stop_flushes_the_rest() -> None:
    writer = Writer()
    usage = counter(writer, interval=0.01)
    usage.start()
    try:
        usage.count("org_1", key(), "VALID", NOW)
        assert writer.called.wait(timeout=5)
    finally:
        usage.count("org_1", key(), "EXPIRED", NOW)
        usage.stop()

    assert writer.totals() == {("key_1", "VALID", MINUTE): 1, ("key_1", "EXPIRED", MINUTE): 1}


def test_the_null_counter_counts_nothing() -> None:
    usage = NullUsageCounter()
    usage.start()
    usage.count("org_1", key(), "VALID", NOW)
    usage.flush()
    usage.stop()
    assert vars(usage) == {}


def test_counts_from_many_threads_racing_flushes_are_all_handed_over() -> None:
    writer = Writer()
    usage = counter(writer)
    record = key()
    per_thread, threads = 2_000, 4

    def work() -> None:
        for index in range(per_thread):
            usage.count("org_1", record, "VALID", NOW + timedelta(seconds=index % 90))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    while any(worker.is_alive() for worker in workers):
        usage.flush()
    usage.flush()

    assert sum(writer.totals().values()) == per_thread * threads
    assert set(writer.totals()) == {
        ("key_1", "VALID", MINUTE),
        ("key_1", "VALID", MINUTE + timedelta(minutes=1)),
    }
