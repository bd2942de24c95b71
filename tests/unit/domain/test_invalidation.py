"""Invalidation notices: each kind forgets what it names; a notice this version does not
understand forgets everything (too much costs cold loads, too little serves a revoked key)."""

from __future__ import annotations

import pytest

from keyplane.domain.invalidation import KINDS, apply, apply_all, notice, stamped, unstamped


class RecordingCache:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def invalidate_key(self, key_id: str) -> None:
        self.calls.append(("key", key_id))

    def invalidate_app(self, app_id: str) -> None:
        self.calls.append(("app", app_id))

    def invalidate_profile(self, profile_id: str) -> None:
        self.calls.append(("profile", profile_id))

    def invalidate_org(self, org_id: str) -> None:
        self.calls.append(("org", org_id))

    def clear(self) -> None:
        self.calls.append(("clear", ""))


@pytest.mark.parametrize("kind", KINDS)
def test_each_kind_forgets_what_it_names(kind: str) -> None:
    cache = RecordingCache()
    apply(cache, notice(kind, "x_1"))  # type: ignore[arg-type]
    assert cache.calls == [(kind, "x_1")]


@pytest.mark.parametrize("text", ["", "key", "key:", "webhook:whk_1", "*"])
def test_a_notice_not_understood_forgets_everything(text: str) -> None:
    cache = RecordingCache()
    apply(cache, text)  # type: ignore[arg-type]
    assert cache.calls == [("clear", "")]


def test_a_signing_notice_reloads_the_signing_keys_and_keeps_the_cache() -> None:
    cache, reloads = RecordingCache(), []
    apply(cache, notice("signing", "keys"), lambda: reloads.append(1))  # type: ignore[arg-type]
    assert cache.calls == []
    assert reloads == [1]
    apply(cache, "webhook:whk_1", lambda: reloads.append(2))  # type: ignore[arg-type]
    assert cache.calls == [("clear", "")]
    assert reloads == [1, 2]  # a notice not understood forgets the signing keys too


def test_notices_apply_in_order() -> None:
    cache = RecordingCache()
    apply_all(cache, ["app:app_1", "key:key_2"])  # type: ignore[arg-type]
    assert cache.calls == [("app", "app_1"), ("key", "key_2")]


def test_a_stamped_notice_reads_back_with_its_send_time() -> None:
    assert unstamped(stamped("key:key_1", 1700000000.25)) == ("key:key_1", 1700000000.25)


@pytest.mark.parametrize(
    "payload", ["key:key_1", "org:org 1", "nan key:key_1", "inf key:key_1", "garbage"]
)
def test_an_unstamped_or_badly_stamped_notice_is_read_whole(payload: str) -> None:
    assert unstamped(payload) == (payload, None)


def test_a_stamped_notice_makes_an_older_node_drop_everything() -> None:
    """A node of the previous version applies the payload as it is: the stamp reads as an
    unknown kind, so it forgets too much, never too little."""
    cache = RecordingCache()
    apply(cache, stamped("key:key_1", 1700000000.0))  # type: ignore[arg-type]
    assert cache.calls == [("clear", "")]
