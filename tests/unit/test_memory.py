"""The in-process key cache and the buffered last-used recorder."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keyplane.domain.scopes import ScopeSet
from keyplane.domain.verification import CachedKey
from keyplane.memory import BufferedUsageRecorder, InProcessKeyCache

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def entry(
    key_id: str,
    *,
    org_id: str = "org_1",
    app_id: str | None = None,
    profile_id: str | None = None,
    ancestors: tuple[str, ...] = (),
) -> CachedKey:
    return CachedKey(
        key_id=key_id,
        org_id=org_id,
        app_id=app_id,
        profile_id=profile_id,
        stored_status="active",
        expires_at=None,
        scopes=ScopeSet.full(),
        profile=None,
        metadata={},
        environment="live",
        ancestors=ancestors,
    )


def filled(*entries: CachedKey, **bounds: int) -> InProcessKeyCache:
    """A cache holding each entry under the digest ``d_<key id>``."""
    cache = InProcessKeyCache(**bounds)
    for item in entries:
        cache.put(f"d_{item.key_id}", item, cache.generation())
    return cache


def cached_ids(cache: InProcessKeyCache, *key_ids: str) -> set[str]:
    return {k for k in key_ids if cache.get(f"d_{k}") is not None}


# --- InProcessKeyCache: put and get ----------------------------------------------------------


def test_a_put_entry_is_got_by_its_digest() -> None:
    cache = InProcessKeyCache()
    item = entry("k1")

    cache.put("digest", item, cache.generation())

    assert cache.get("digest") is item
    assert len(cache) == 1


def test_an_unknown_digest_gets_none() -> None:
    assert InProcessKeyCache().get("digest") is None


def test_a_second_put_replaces_the_entry() -> None:
    cache = filled(entry("k1"))
    newer = entry("k1", app_id="app_1")

    cache.put("d_k1", newer, cache.generation())

    assert cache.get("d_k1") is newer
    assert len(cache) == 1


# --- InProcessKeyCache: invalidation ---------------------------------------------------------

# Four keys: two orgs, two apps, two profiles, overlapping so that each invalidation has
# something to drop and something it must leave.
ENTRIES = (
    entry("k1", org_id="org_1", app_id="app_1", profile_id="prof_1"),
    entry("k2", org_id="org_1", app_id="app_1", profile_id=None),
    entry("k3", org_id="org_1", app_id=None, profile_id="prof_1"),
    entry("k4", org_id="org_2", app_id="app_2", profile_id="prof_2"),
)
KEY_IDS = tuple(e.key_id for e in ENTRIES)


@pytest.mark.parametrize(
    ("invalidate", "ident", "left"),
    [
        pytest.param("invalidate_key", "k1", {"k2", "k3", "k4"}, id="key"),
        pytest.param("invalidate_key", "k9", {"k1", "k2", "k3", "k4"}, id="unknown-key"),
        pytest.param("invalidate_app", "app_1", {"k3", "k4"}, id="app"),
        pytest.param("invalidate_app", "app_2", {"k1", "k2", "k3"}, id="other-app"),
        pytest.param("invalidate_app", "app_9", {"k1", "k2", "k3", "k4"}, id="unknown-app"),
        pytest.param("invalidate_profile", "prof_1", {"k2", "k4"}, id="profile"),
        pytest.param("invalidate_profile", "prof_9", {"k1", "k2", "k3", "k4"}, id="unknown-prof"),
        pytest.param("invalidate_org", "org_1", {"k4"}, id="org"),
        pytest.param("invalidate_org", "org_2", {"k1", "k2", "k3"}, id="other-org"),
    ],
)
def test_invalidation_drops_exactly_the_concerned_entries(
    invalidate: str, ident: str, left: set[str]
) -> None:
    cache = filled(*ENTRIES)

    getattr(cache, invalidate)(ident)

    assert cached_ids(cache, *KEY_IDS) == left
    assert len(cache) == len(left)


@pytest.mark.parametrize(
    ("invalidate", "ident"),
    [
        ("invalidate_key", "k9"),
        ("invalidate_app", "app_9"),
        ("invalidate_profile", "prof_9"),
        ("invalidate_org", "org_9"),
    ],
)
def test_every_invalidation_advances_the_generation_even_with_nothing_cached(
    invalidate: str, ident: str
) -> None:
    # The key being invalidated may be in flight from the store right now.
    cache = InProcessKeyCache()
    before = cache.generation()

    getattr(cache, invalidate)(ident)

    assert cache.generation() > before


def test_an_invalidated_entry_can_be_cached_again() -> None:
    cache = filled(*ENTRIES)
    cache.invalidate_app("app_1")

    cache.put("d_k1", ENTRIES[0], cache.generation())

    assert cached_ids(cache, *KEY_IDS) == {"k1", "k3", "k4"}
    cache.invalidate_profile("prof_1")  # the refilled entry is indexed again
    assert cached_ids(cache, *KEY_IDS) == {"k4"}


def test_clear_drops_every_entry_and_every_known_miss() -> None:
    cache = filled(*ENTRIES)
    cache.put_missing("nothing", cache.generation())
    before = cache.generation()

    cache.clear()

    assert len(cache) == 0
    assert cached_ids(cache, *KEY_IDS) == set()
    assert not cache.known_missing("nothing")
    assert cache.generation() > before


def test_forgetting_a_key_forgets_every_descendants_record_wherever_the_key_itself_is() -> None:
    child, grandchild = entry("c", ancestors=("p",)), entry("g", ancestors=("c", "p"))
    cache = filled(child, grandchild, entry("other"))  # the parent's own record is not cached

    cache.invalidate_key("p")

    assert cached_ids(cache, "c", "g", "other") == {"other"}
    cache = filled(child, grandchild)
    cache.invalidate_key("c")
    assert cached_ids(cache, "c", "g") == set()


# --- InProcessKeyCache: stale fills ----------------------------------------------------------


@pytest.mark.parametrize(
    ("invalidate", "ident"),
    [
        ("invalidate_key", "k1"),
        ("invalidate_app", "app_1"),
        ("invalidate_profile", "prof_1"),
        ("invalidate_org", "org_1"),
        ("clear", None),
    ],
)
def test_a_put_with_a_generation_read_before_an_invalidation_is_dropped(
    invalidate: str, ident: str | None
) -> None:
    cache = InProcessKeyCache()
    generation = cache.generation()  # the verifier reads this, then loads from the store ...
    args = () if ident is None else (ident,)
    getattr(cache, invalidate)(*args)  # ... while an update invalidates the key ...

    cache.put("d_k1", ENTRIES[0], generation)  # ... and its stale load must not be cached.

    assert cache.get("d_k1") is None
    assert len(cache) == 0


def test_a_put_with_the_current_generation_after_an_invalidation_is_kept() -> None:
    cache = InProcessKeyCache()
    cache.invalidate_key("k1")

    cache.put("d_k1", ENTRIES[0], cache.generation())

    assert cache.get("d_k1") is ENTRIES[0]


def test_a_stale_put_leaves_no_index_behind() -> None:
    cache = filled(ENTRIES[1])
    generation = cache.generation()
    cache.invalidate_key("k9")
    cache.put("d_k1", ENTRIES[0], generation)

    cache.invalidate_app("app_1")

    assert len(cache) == 0


def test_a_put_missing_with_a_stale_generation_is_dropped() -> None:
    cache = InProcessKeyCache()
    generation = cache.generation()
    cache.invalidate_org("org_1")  # e.g. a key was just created

    cache.put_missing("digest", generation)

    assert not cache.known_missing("digest")


# --- InProcessKeyCache: known misses ---------------------------------------------------------


def test_a_put_missing_digest_is_known_missing() -> None:
    cache = InProcessKeyCache()

    cache.put_missing("digest", cache.generation())

    assert cache.known_missing("digest")
    assert not cache.known_missing("other")
    assert cache.get("digest") is None


def test_known_misses_are_bounded_and_the_oldest_is_evicted_first() -> None:
    cache = InProcessKeyCache(max_missing=3)
    for digest in ("m1", "m2", "m3", "m4", "m5"):
        cache.put_missing(digest, cache.generation())

    assert [d for d in ("m1", "m2", "m3", "m4", "m5") if cache.known_missing(d)] == [
        "m3",
        "m4",
        "m5",
    ]


@given(digests=st.lists(st.text(min_size=1, max_size=4), unique=True, max_size=30))
def test_known_misses_keep_only_the_newest_max_missing(digests: list[str]) -> None:
    cache = InProcessKeyCache(max_missing=5)
    for digest in digests:
        cache.put_missing(digest, cache.generation())

    assert [d for d in digests if cache.known_missing(d)] == digests[-5:]


# --- InProcessKeyCache: entry bound ----------------------------------------------------------


def test_entries_are_bounded_and_the_oldest_is_evicted_first() -> None:
    cache = filled(*ENTRIES, max_entries=2)

    assert len(cache) == 2
    assert cached_ids(cache, *KEY_IDS) == {"k3", "k4"}


def test_an_evicted_entry_leaves_no_index_behind() -> None:
    cache = filled(*ENTRIES, max_entries=2)  # k1 and k2 (app_1) were evicted

    cache.invalidate_app("app_1")
    cache.invalidate_key("k1")

    assert cached_ids(cache, *KEY_IDS) == {"k3", "k4"}
    cache.invalidate_profile("prof_1")
    assert cached_ids(cache, *KEY_IDS) == {"k4"}


@given(count=st.integers(min_value=0, max_value=40), bound=st.integers(min_value=1, max_value=8))
def test_the_cache_never_holds_more_than_max_entries(count: int, bound: int) -> None:
    cache = filled(*(entry(f"k{i}") for i in range(count)), max_entries=bound)

    assert len(cache) == min(count, bound)
    newest = {f"k{i}" for i in range(max(0, count - bound), count)}
    assert cached_ids(cache, *(f"k{i}" for i in range(count))) == newest


# --- InProcessKeyCache: a model ---------------------------------------------------------------

# Six digests whose entries are fixed (a key's digest, org, app and profile belong together),
# spread over two orgs, two apps and two profiles; k2 is k0's child and k4 its grandchild
# (delegated keys: forgetting a key forgets its descendants).
ANCESTORS = {2: ("k0",), 4: ("k2", "k0")}
MODEL_ENTRIES = {
    f"d{i}": entry(
        f"k{i}",
        org_id=("org_a", "org_b")[i % 2],
        app_id=("app_a", "app_b", None)[i % 3],
        profile_id=("prof_a", None, "prof_b", None)[i % 4],
        ancestors=ANCESTORS.get(i, ()),
    )
    for i in range(6)
}
DIGESTS = sorted(MODEL_ENTRIES)


class KeyCacheMachine(RuleBasedStateMachine):
    """The cache behaves like a plain dict that invalidations filter."""

    def __init__(self) -> None:
        super().__init__()
        self.cache = InProcessKeyCache()
        self.model: dict[str, CachedKey] = {}
        self.missing: set[str] = set()

    def _drop_where(self, attribute: str, ident: str) -> None:
        self.model = {d: e for d, e in self.model.items() if getattr(e, attribute) != ident}

    @rule(digest=st.sampled_from(DIGESTS))
    def put(self, digest: str) -> None:
        self.cache.put(digest, MODEL_ENTRIES[digest], self.cache.generation())
        self.model[digest] = MODEL_ENTRIES[digest]

    @rule(digest=st.sampled_from(DIGESTS), key_id=st.sampled_from([f"k{i}" for i in range(7)]))
    def put_after_a_racing_invalidation(self, digest: str, key_id: str) -> None:
        generation = self.cache.generation()
        self.cache.invalidate_key(key_id)
        self._drop_key(key_id)

        self.cache.put(digest, MODEL_ENTRIES[digest], generation)

    @rule(digest=st.sampled_from(["x1", "x2", "x3"]))
    def put_missing(self, digest: str) -> None:
        self.cache.put_missing(digest, self.cache.generation())
        self.missing.add(digest)

    def _drop_key(self, key_id: str) -> None:
        self.model = {
            d: e for d, e in self.model.items() if e.key_id != key_id and key_id not in e.ancestors
        }

    @rule(key_id=st.sampled_from([f"k{i}" for i in range(7)]))
    def invalidate_key(self, key_id: str) -> None:
        self.cache.invalidate_key(key_id)
        self._drop_key(key_id)

    @rule(app_id=st.sampled_from(["app_a", "app_b", "app_c"]))
    def invalidate_app(self, app_id: str) -> None:
        self.cache.invalidate_app(app_id)
        self._drop_where("app_id", app_id)

    @rule(profile_id=st.sampled_from(["prof_a", "prof_b", "prof_c"]))
    def invalidate_profile(self, profile_id: str) -> None:
        self.cache.invalidate_profile(profile_id)
        self._drop_where("profile_id", profile_id)

    @rule(org_id=st.sampled_from(["org_a", "org_b", "org_c"]))
    def invalidate_org(self, org_id: str) -> None:
        self.cache.invalidate_org(org_id)
        self._drop_where("org_id", org_id)

    @invariant()
    def holds_what_the_model_holds(self) -> None:
        for digest in DIGESTS:
            assert self.cache.get(digest) is self.model.get(digest), digest
        assert len(self.cache) == len(self.model)

    @invariant()
    def remembers_known_misses(self) -> None:
        for digest in ("x1", "x2", "x3"):
            assert self.cache.known_missing(digest) == (digest in self.missing)


TestKeyCacheAgainstAModel = KeyCacheMachine.TestCase
TestKeyCacheAgainstAModel.settings = settings(max_examples=50, deadline=None)


# --- BufferedUsageRecorder -------------------------------------------------------------------


class Writer:
    """Records each batch it is handed."""

    def __init__(self) -> None:
        self.batches: list[dict[str, datetime]] = []
        self.counts: list[dict[str, int]] = []
        self.called = threading.Event()

    def __call__(self, used: Mapping[str, datetime], counts: Mapping[str, int]) -> None:
        self.batches.append(dict(used))
        self.counts.append(dict(counts))
        self.called.set()


def test_touch_then_flush_hands_the_latest_time_per_key_in_one_batch() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer)

    recorder.touch("k1", NOW)
    recorder.touch("k2", NOW)
    recorder.touch("k1", NOW + timedelta(seconds=2))
    recorder.flush()

    assert writer.batches == [{"k1": NOW + timedelta(seconds=2), "k2": NOW}]


def test_a_flush_hands_over_how_often_each_key_was_touched_since_the_last() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer)
    for key_id in ("k1", "k2", "k1", "k1"):
        recorder.touch(key_id, NOW)

    recorder.flush()
    recorder.touch("k1", NOW)
    recorder.flush()

    assert writer.counts == [{"k1": 3, "k2": 1}, {"k1": 1}]


@given(
    touches=st.lists(
        st.tuples(st.sampled_from(["k1", "k2", "k3"]), st.integers(min_value=0, max_value=60)),
        max_size=20,
    )
)
def test_a_flush_hands_over_each_keys_last_touch(touches: list[tuple[str, int]]) -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer)
    expected: dict[str, datetime] = {}
    for key_id, seconds in sorted(touches, key=lambda t: t[1]):
        at = NOW + timedelta(seconds=seconds)
        recorder.touch(key_id, at)
        expected[key_id] = at

    recorder.flush()

    assert writer.batches == ([expected] if expected else [])
    assert writer.counts == ([dict(Counter(k for k, _ in touches))] if touches else [])


def test_a_flush_with_nothing_pending_does_not_call_the_writer() -> None:
    writer = Writer()

    BufferedUsageRecorder(writer).flush()

    assert writer.batches == []


def test_a_flush_hands_each_touch_over_once() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer)
    recorder.touch("k1", NOW)

    recorder.flush()
    recorder.flush()
    recorder.touch("k2", NOW)
    recorder.flush()

    assert writer.batches == [{"k1": NOW}, {"k2": NOW}]


def test_a_touch_during_a_write_goes_into_the_next_batch() -> None:
    batches: list[dict[str, datetime]] = []

    def write(used: Mapping[str, datetime], counts: Mapping[str, int]) -> None:
        batches.append(dict(used))
        if len(batches) == 1:
            recorder.touch("k2", NOW)

    recorder = BufferedUsageRecorder(write)
    recorder.touch("k1", NOW)

    recorder.flush()
    recorder.flush()

    assert batches == [{"k1": NOW}, {"k2": NOW}]


def test_a_failing_writer_does_not_propagate_and_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def write(used: Mapping[str, datetime], counts: Mapping[str, int]) -> None:
        raise ConnectionError("database down")

    recorder = BufferedUsageRecorder(write)
    recorder.touch("k1", NOW)
    recorder.touch("k2", NOW)

    with caplog.at_level(logging.ERROR, logger="keyplane.memory"):
        recorder.flush()

    [record] = caplog.records
    assert record.getMessage() == "could not record last-used times for 2 keys"
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], ConnectionError)


def test_the_recorder_keeps_working_after_a_failed_write() -> None:
    batches: list[dict[str, datetime]] = []

    def write(used: Mapping[str, datetime], counts: Mapping[str, int]) -> None:
        if not batches:
            batches.append({})
            raise ConnectionError("database down")
        batches.append(dict(used))

    recorder = BufferedUsageRecorder(write)
    recorder.touch("k1", NOW)
    recorder.flush()  # lost: last-used times are advisory
    recorder.touch("k2", NOW)
    recorder.flush()

    assert batches == [{}, {"k2": NOW}]


def test_stop_flushes_what_is_pending() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer, interval=60)
    recorder.start()
    recorder.touch("k1", NOW)

    recorder.stop()

    assert writer.batches == [{"k1": NOW}]


def test_stop_without_start_still_flushes() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer)
    recorder.touch("k1", NOW)

    recorder.stop()

    assert writer.batches == [{"k1": NOW}]


def test_a_started_recorder_flushes_every_interval() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer, interval=0.01)
    recorder.start()
    try:
        recorder.touch("k1", NOW)
        assert writer.called.wait(timeout=2)
    finally:
        recorder.stop()

    assert writer.batches == [{"k1": NOW}]


def test_start_is_idempotent_and_stop_ends_the_thread() -> None:
    recorder = BufferedUsageRecorder(Writer(), interval=60)
    before = set(threading.enumerate())  # other tests' apps may run recorders of their own

    recorder.start()
    recorder.start()
    started = [t for t in threading.enumerate() if t not in before]
    recorder.stop()

    assert [t.name for t in started] == ["keyplane-usage"]
    assert not started[0].is_alive()


def test_a_stopped_recorder_can_be_started_again() -> None:
    writer = Writer()
    recorder = BufferedUsageRecorder(writer, interval=0.01)
    recorder.start()
    recorder.stop()

    recorder.start()
    try:
        recorder.touch("k1", NOW)
        assert writer.called.wait(timeout=2)
    finally:
        recorder.stop()

    assert writer.batches == [{"k1": NOW}]
