"""The key format ``kp_<env>_<32 base62><6 base62 CRC32>`` and its keyed digest."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.tokens import (
    BASE62,
    CHECKSUM_LENGTH,
    DIGEST_VERSION,
    ENVIRONMENTS,
    KEY_LENGTH,
    PREFIX,
    RANDOM_LENGTH,
    KeyHasher,
    checksum,
    looks_like_key,
    mask_key,
    mint_key,
    parse_key,
)

PEPPER = b"p" * 32
OTHER_PEPPER = b"q" * 32
RANDOM_START = len("kp_live_")
CHECKSUM_START = KEY_LENGTH - CHECKSUM_LENGTH

environments = st.sampled_from(ENVIRONMENTS)
random_parts = st.text(alphabet=BASE62, min_size=RANDOM_LENGTH, max_size=RANDOM_LENGTH)


@st.composite
def keys(draw: st.DrawFn) -> str:
    """Well-formed keys built the way ``mint_key`` builds them, from drawn random parts."""
    body = f"{PREFIX}{draw(environments)}_{draw(random_parts)}"
    return body + checksum(body)


@st.composite
def keys_with_one_character_changed(draw: st.DrawFn) -> tuple[str, str]:
    """A valid key and a copy with exactly one character replaced by a different one."""
    key = draw(keys())
    position = draw(st.integers(min_value=0, max_value=len(key) - 1))
    replacement = draw(
        st.one_of(st.sampled_from(BASE62 + "_-:. "), st.characters()).filter(
            lambda c: c != key[position]
        )
    )
    return key, key[:position] + replacement + key[position + 1 :]


# --- Minting ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_minted_key_has_the_documented_shape(environment: str) -> None:
    key = mint_key(environment)  # type: ignore[arg-type]

    assert len(key) == KEY_LENGTH == 46
    assert key.startswith(f"kp_{environment}_")
    assert all(c in BASE62 for c in key[RANDOM_START:])


def test_mint_key_defaults_to_live() -> None:
    assert mint_key().startswith("kp_live_")


def test_mint_key_test_gives_a_kp_test_key() -> None:
    key = mint_key("test")

    assert key.startswith("kp_test_")
    parsed = parse_key(key)
    assert parsed is not None
    assert parsed.environment == "test"


def test_mint_key_rejects_an_unknown_environment() -> None:
    with pytest.raises(ValueError, match="unknown environment"):
        mint_key("prod")  # type: ignore[arg-type]


def test_two_minted_keys_differ() -> None:
    assert len({mint_key() for _ in range(50)}) == 50


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_minted_key_parses_with_its_environment(environment: str) -> None:
    key = mint_key(environment)  # type: ignore[arg-type]

    parsed = parse_key(key)

    assert parsed is not None
    assert parsed.environment == environment
    assert parsed.full == key


# --- Checksum --------------------------------------------------------------------------------


def test_checksum_is_six_base62_characters_of_crc32() -> None:
    # CRC32("") == 0, so its checksum is all zeros.
    assert checksum("") == "000000"
    assert len(checksum("kp_live_abc")) == CHECKSUM_LENGTH


@given(body=st.text(alphabet=BASE62 + "_", max_size=60))
def test_checksum_is_always_six_base62_characters(body: str) -> None:
    result = checksum(body)

    assert len(result) == CHECKSUM_LENGTH
    assert all(c in BASE62 for c in result)


# --- Parsing: properties ---------------------------------------------------------------------


@given(key=keys())
def test_every_generated_key_parses_and_verifies_its_checksum(key: str) -> None:
    parsed = parse_key(key)

    assert parsed is not None
    assert parsed.full == key
    assert parsed.environment == key[3:7]
    assert key[CHECKSUM_START:] == checksum(key[:CHECKSUM_START])


@given(pair=keys_with_one_character_changed())
def test_one_changed_character_anywhere_fails_parsing(pair: tuple[str, str]) -> None:
    _, changed = pair

    assert parse_key(changed) is None


@pytest.mark.parametrize("position", range(KEY_LENGTH))
def test_one_changed_character_at_each_position_fails_parsing(position: int) -> None:
    # Exhaustive over positions (the property above samples them): prefix, environment,
    # separator, random part and checksum alike.
    key = mint_key()
    for replacement in BASE62 + "_":
        if replacement == key[position]:
            continue
        changed = key[:position] + replacement + key[position + 1 :]
        assert parse_key(changed) is None, (position, replacement)


@given(key=keys(), extra=st.text(min_size=1, max_size=3))
def test_a_key_with_extra_characters_fails_parsing(key: str, extra: str) -> None:
    assert parse_key(key + extra) is None
    assert parse_key(extra + key) is None


@given(key=keys(), cut=st.integers(min_value=1, max_value=KEY_LENGTH))
def test_a_truncated_key_fails_parsing(key: str, cut: int) -> None:
    assert parse_key(key[:-cut]) is None


@given(text=st.text(max_size=60))
def test_arbitrary_text_never_crashes_the_parser(text: str) -> None:
    parsed = parse_key(text)

    assert parsed is None or parsed.full == text


# --- Parsing: garbage table ------------------------------------------------------------------

VALID = mint_key("live")
TAIL = VALID[RANDOM_START:]


@pytest.mark.parametrize(
    ("candidate", "why"),
    [
        ("", "empty"),
        ("kp_live_", "prefix only"),
        (VALID[:-1], "one character short"),
        (VALID + "0", "one character long"),
        (" " + VALID[1:], "leading space in place of k"),
        (VALID.upper(), "upper-cased"),
        ("KP_live_" + TAIL, "prefix in capitals"),
        ("xx_live_" + TAIL, "wrong prefix"),
        ("kp_prod_" + TAIL, "unknown environment"),
        ("kp_LIVE_" + TAIL, "environment in capitals"),
        ("kp_live-" + TAIL, "wrong separator"),
        ("kp_livee" + TAIL, "no separator"),
        ("kp_test_" + TAIL, "environment swapped: checksum covers it"),
        ("kp_live_" + "-" * (RANDOM_LENGTH + CHECKSUM_LENGTH), "punctuation tail"),
        ("kp_live_" + "é" * (RANDOM_LENGTH + CHECKSUM_LENGTH), "non-ASCII tail"),
        ("kp_live_" + "٣" * (RANDOM_LENGTH + CHECKSUM_LENGTH), "non-ASCII digits"),
        ("kp_live_" + TAIL[:-CHECKSUM_LENGTH] + "000000", "wrong checksum"),
        (VALID + "\n", "trailing newline"),
    ],
)
def test_garbage_is_not_a_key(candidate: str, why: str) -> None:
    assert parse_key(candidate) is None, why


# --- Masking ---------------------------------------------------------------------------------


@given(key=keys())
def test_masked_key_shows_prefix_and_last_four_only(key: str) -> None:
    masked = mask_key(key)

    assert masked == f"{key[:RANDOM_START]}…{key[-4:]}"
    assert masked.startswith(f"kp_{key[3:7]}_")


@given(key=keys())
def test_masked_key_never_shows_the_random_part(key: str) -> None:
    masked = mask_key(key)
    shown_tail = masked.removeprefix(key[:RANDOM_START] + "…")

    # The four characters shown after the prefix are checksum characters, never random ones.
    assert shown_tail == key[CHECKSUM_START:][-4:]
    assert key[RANDOM_START:CHECKSUM_START] not in masked
    assert len(masked) == RANDOM_START + 1 + 4


# --- looks_like_key --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("/v1/things?key=" + VALID, True),
        ("prefix kp_test_ suffix", True),
        ("kp_live_", True),
        ("/v1/keys/key_01HXYZ", False),
        ("kp_prod_abc", False),
        ("KP_LIVE_abc", False),
        ("", False),
    ],
)
def test_looks_like_key_spots_key_shaped_text(text: str, expected: bool) -> None:
    assert looks_like_key(text) is expected


@given(key=keys(), before=st.text(max_size=10), after=st.text(max_size=10))
def test_any_key_embedded_in_text_looks_like_a_key(key: str, before: str, after: str) -> None:
    assert looks_like_key(before + key + after)


# --- KeyHasher -------------------------------------------------------------------------------


@given(key=keys())
def test_hasher_is_deterministic_for_one_pepper(key: str) -> None:
    assert KeyHasher(PEPPER).digest(key) == KeyHasher(PEPPER).digest(key)


@given(key=keys())
def test_hasher_digest_can_be_taken_repeatedly_from_one_instance(key: str) -> None:
    hasher = KeyHasher(PEPPER)

    assert hasher.digest(key) == hasher.digest(key)


@given(key=keys())
def test_hasher_digests_differ_across_peppers(key: str) -> None:
    assert KeyHasher(PEPPER).digest(key) != KeyHasher(OTHER_PEPPER).digest(key)


@given(pair=st.lists(keys(), min_size=2, max_size=2, unique=True))
def test_hasher_digests_differ_across_keys(pair: list[str]) -> None:
    hasher = KeyHasher(PEPPER)

    assert hasher.digest(pair[0]) != hasher.digest(pair[1])


def test_hasher_digest_is_hmac_sha256_hex() -> None:
    key = mint_key()

    digest = KeyHasher(PEPPER).digest(key)

    assert digest == hmac.new(PEPPER, key.encode(), hashlib.sha256).hexdigest()
    assert len(digest) == 64
    assert key not in digest
    assert KeyHasher.version == DIGEST_VERSION == 1


@pytest.mark.parametrize("length", [0, 1, 16, 31])
def test_hasher_rejects_a_pepper_shorter_than_32_bytes(length: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        KeyHasher(b"x" * length)


@pytest.mark.parametrize("length", [32, 33, 64])
def test_hasher_accepts_a_pepper_of_32_bytes_or_more(length: int) -> None:
    assert len(KeyHasher(b"x" * length).digest(mint_key())) == 64
