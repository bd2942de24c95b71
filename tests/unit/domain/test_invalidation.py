"""Invalidation notices: each kind forgets what it names; a notice this version does not
understand forgets everything (too much costs cold loads, too little serves a revoked key)."""

from __future__ import annotations

import pytest

from keyplane.domain.invalidation import KINDS, apply, apply_all, notice


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


def test_notices_apply_in_order() -> None:
    cache = RecordingCache()
    apply_all(cache, ["app:app_1", "key:key_2"])  # type: ignore[arg-type]
    assert cache.calls == [("app", "app_1"), ("key", "key_2")]
