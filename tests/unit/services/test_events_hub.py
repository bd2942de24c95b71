"""InvalidationEvents, the event stream's hub: resumable positions within a bounded buffer,
one organization's notices for its subscribers only, a reset for whatever it cannot vouch
for, and a bounded queue per subscriber."""

from __future__ import annotations

import threading

from keyplane.domain.invalidation import notice
from keyplane.services.events import Event, InvalidationEvents

from support.aio import run


def _names(events: list[Event]) -> list[tuple[str, str, str]]:
    return [(e.name, e.kind or e.reason, e.ident) for e in events]


def test_a_fresh_subscriber_starts_ready_at_the_current_position() -> None:
    hub = InvalidationEvents(epoch="e1")
    hub.published([notice("key", "key_1", "org_a")])

    async def go() -> list[Event]:
        subscription, first = hub.subscribe("org_a", None)
        subscription.close()
        return first

    first = run(go)
    assert _names(first) == [("ready", "", "")]
    assert hub.event_id(first[0].seq) == "e1-1"
    assert hub.subscribers == 0


def test_a_resume_replays_only_its_own_organizations_notices() -> None:
    hub = InvalidationEvents(epoch="e1")
    hub.published([notice("key", "key_1", "org_a")])
    hub.published([notice("key", "key_2", "org_b"), notice("app", "app_3", "org_a")])

    async def go() -> list[Event]:
        subscription, first = hub.subscribe("org_a", "e1-0")
        subscription.close()
        return first

    assert _names(run(go)) == [
        ("invalidate", "key", "key_1"),
        ("invalidate", "app", "app_3"),
        ("ready", "", ""),
    ]


def test_a_position_that_fell_out_of_the_buffer_is_a_reset() -> None:
    hub = InvalidationEvents(epoch="e1", buffer=2)
    hub.published([notice("key", f"key_{n}", "org_a") for n in range(5)])

    async def go(position: str) -> list[Event]:
        subscription, first = hub.subscribe("org_a", position)
        subscription.close()
        return first

    assert _names(run(lambda: go("e1-1"))) == [("reset", "too-old", ""), ("ready", "", "")]
    assert _names(run(lambda: go("e1-3")))[0] == ("invalidate", "key", "key_3")


def test_a_notice_without_its_organization_resets_everyone() -> None:
    hub = InvalidationEvents(epoch="e1")

    async def go() -> list[Event] | None:
        subscription, _ = hub.subscribe("org_a", None)
        hub.published([notice("key", "key_9")])  # an older node's notice: whose is unknown
        try:
            return await subscription.next(1.0)
        finally:
            subscription.close()

    assert _names(run(go) or []) == [("reset", "unattributed", "")]


def test_notices_from_another_thread_wake_the_subscriber() -> None:
    hub = InvalidationEvents(epoch="e1")

    async def go() -> list[Event] | None:
        subscription, _ = hub.subscribe("org_a", None)
        thread = threading.Thread(target=hub.published, args=([notice("org", "org_a")],))
        thread.start()
        try:
            return await subscription.next(2.0)
        finally:
            thread.join()
            subscription.close()

    assert _names(run(go) or []) == [("invalidate", "org", "org_a")]


def test_a_subscriber_that_falls_behind_is_dropped_not_grown() -> None:
    hub = InvalidationEvents(epoch="e1", queue=3)

    async def go() -> tuple[list[Event] | None, int]:
        subscription, _ = hub.subscribe("org_a", None)
        hub.published([notice("key", f"key_{n}", "org_a") for n in range(10)])
        try:
            return await subscription.next(1.0), len(subscription._queue)
        finally:
            subscription.close()

    batch, queued = run(go)
    assert batch is None  # the stream sends a reset and ends
    assert queued == 0


def test_a_quiet_stream_times_out_for_a_heartbeat() -> None:
    hub = InvalidationEvents(epoch="e1")

    async def go() -> list[Event] | None:
        subscription, _ = hub.subscribe("org_a", None)
        try:
            return await subscription.next(0.05)
        finally:
            subscription.close()

    assert run(go) == []


def test_a_notice_that_changes_no_verdict_is_not_sent() -> None:
    hub = InvalidationEvents(epoch="e1")

    async def go() -> list[Event] | None:
        subscription, _ = hub.subscribe("org_a", None)
        hub.published(["signing:keys", notice("key", "key_1", "org_a")])
        try:
            return await subscription.next(1.0)
        finally:
            subscription.close()

    assert _names(run(go) or []) == [("invalidate", "key", "key_1")]
