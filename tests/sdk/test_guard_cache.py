"""The guard's verdict cache and checks, in process: what it keeps (a salted fingerprint,
never the key), what drops an entry, and the checksum test it shares with keyplane."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from keyplane.domain.tokens import mint_key, parse_key
from keyplane_client import Verdict, VerifiedKey
from keyplane_client._cache import QUIET_SECONDS, VerdictCache
from keyplane_client._guard import bearer, token_expiry, well_formed


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _verified(key_id: str = "key_1", **more: object) -> VerifiedKey:
    fields: dict[str, object] = {"valid": True, "code": "VALID", "key_id": key_id}
    fields.update(more)
    return VerifiedKey.of(Verdict.model_validate(fields))


def test_entries_are_keyed_by_a_salted_fingerprint_never_the_key() -> None:
    key = mint_key()
    one, two = VerdictCache(10, 30), VerdictCache(10, 30)
    assert one.fingerprint(key) != two.fingerprint(key)  # a salt per cache
    assert one.fingerprint(key) == one.fingerprint(key)
    cache_key = (one.fingerprint(key), "models:read", None)
    assert one.put(cache_key, _verified(), one.generation)
    stored = repr(one.__dict__).encode()
    assert key.encode() not in stored
    assert key[8:40].encode() not in stored


def test_a_verification_answered_after_a_drop_is_not_stored() -> None:
    cache = VerdictCache(10, 30)
    generation = cache.generation
    cache.invalidate("key_other")  # a notice arrived while the verification was in flight
    assert not cache.put((b"f", "", None), _verified(), generation)
    assert len(cache) == 0


def test_a_verdict_naming_a_just_changed_id_is_not_stored_for_a_while() -> None:
    """Another keyplane node may not have heard the change yet: its answer could be old."""
    clock = Clock()
    cache = VerdictCache(10, 30, clock=clock)
    cache.invalidate("app_1")
    assert not cache.put((b"f", "", None), _verified(app_id="app_1"), cache.generation)
    assert cache.put((b"g", "", None), _verified("key_2"), cache.generation)  # not named
    clock.now += QUIET_SECONDS
    assert cache.put((b"f", "", None), _verified(app_id="app_1"), cache.generation)


@pytest.mark.parametrize(
    ("ident", "dropped"),
    [("key_1", True), ("app_1", True), ("prf_1", True), ("key_2", False)],
)
def test_a_notice_drops_the_entries_naming_its_id(ident: str, dropped: bool) -> None:
    cache = VerdictCache(10, 30)
    profile = {"id": "prf_1", "name": "gold"}
    cache.put((b"f", "", None), _verified(app_id="app_1", profile=profile), cache.generation)
    cache.invalidate(ident)
    assert (cache.get((b"f", "", None)) is None) == dropped


def test_an_entry_lives_for_the_ttl_and_never_past_the_keys_expiry() -> None:
    clock = Clock()
    wall = 1_800_000_000.0
    cache = VerdictCache(10, 30, clock=clock, wall=lambda: wall)
    soon = datetime.fromtimestamp(wall + 5, UTC)
    cache.put((b"a", "", None), _verified(), cache.generation)
    cache.put((b"b", "", None), _verified("key_2", expires_at=soon), cache.generation)
    clock.now += 6
    assert cache.get((b"a", "", None)) is not None
    assert cache.get((b"b", "", None)) is None  # expired with its key
    clock.now += 25
    assert cache.get((b"a", "", None)) is None


def test_the_oldest_entry_goes_first_past_the_size() -> None:
    cache = VerdictCache(2, 30)
    for name in (b"a", b"b", b"c"):
        cache.put((name, "", None), _verified(name.decode()), cache.generation)
    assert len(cache) == 2
    assert cache.get((b"a", "", None)) is None
    assert cache.get((b"c", "", None)) is not None


def test_a_cache_that_is_not_serving_neither_answers_nor_stores() -> None:
    cache = VerdictCache(10, 30)
    cache.put((b"a", "", None), _verified(), cache.generation)
    cache.serving = False
    assert cache.get((b"a", "", None)) is None
    assert not cache.put((b"b", "", None), _verified(), cache.generation)


def test_a_verified_keys_metadata_is_read_only() -> None:
    verified = _verified(metadata={"plan": "pro"}, expires_at=datetime.now(UTC) + timedelta(1))
    with pytest.raises(TypeError):
        verified.metadata["plan"] = "free"  # type: ignore[index]


def test_the_checksum_test_agrees_with_keyplanes() -> None:
    for _ in range(200):
        key = mint_key("live" if _ % 2 else "test")
        assert well_formed(key)
        for typo in (key[:-1] + ("A" if key[-1] != "A" else "B"), key[:20] + "0" + key[21:]):
            assert well_formed(typo) == (parse_key(typo) is not None)
    assert not well_formed("kp_live_short")
    assert not well_formed("kp_prod_" + "a" * 38)


@pytest.mark.parametrize(
    ("headers", "token"),
    [
        ([], None),
        ([(b"authorization", b"Bearer kp_live_x")], "kp_live_x"),
        ([(b"authorization", b"bearer  kp_live_x ")], "kp_live_x"),
        ([(b"authorization", b"Basic abc")], ""),
        ([(b"authorization", b"Bearer")], ""),
    ],
)
def test_the_bearer_token_is_read_from_the_authorization_header(
    headers: list[tuple[bytes, bytes]], token: str | None
) -> None:
    assert bearer(headers) == token


def _jwt(claims: dict[str, object]) -> str:
    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'EdDSA'})}.{part(claims)}.c2lnbmF0dXJl"


def test_a_cached_token_verdict_never_outlives_the_tokens_exp() -> None:
    clock = Clock()
    wall = 1_800_000_000.0
    cache = VerdictCache(10, 30, clock=clock, wall=lambda: wall)
    token = _jwt({"exp": wall + 3, "sub": "key_1"})
    assert token_expiry(token) == wall + 3
    cache.put((b"t", "", None), _verified(), cache.generation, not_after=token_expiry(token))
    clock.now += 4
    assert cache.get((b"t", "", None)) is None


@pytest.mark.parametrize(
    "token", [mint_key(), "a.b", "a.!!!.c", _jwt({"sub": "x"}), _jwt({"exp": True}), "x.W10.y"]
)
def test_a_key_or_a_token_without_a_readable_exp_has_no_expiry(token: str) -> None:
    assert token_expiry(token) is None
