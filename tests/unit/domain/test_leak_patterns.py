"""Recognising keys in text: only shapes whose checksum holds, at their line and column."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.leaks import KEY_PATTERN, KEY_REGEX, find_keys
from keyplane.domain.tokens import BASE62, ENVIRONMENTS, KEY_LENGTH, mask_key, mint_key

RANDOM_START = len("kp_live_")
TAIL_LENGTH = KEY_LENGTH - RANDOM_START


def test_the_published_regex_matches_every_minted_key_and_nothing_longer() -> None:
    for environment in ENVIRONMENTS:
        key = mint_key(environment)
        assert KEY_PATTERN.fullmatch(key)
        assert not KEY_PATTERN.search(key + "x")
        assert not KEY_PATTERN.search("x" + key)
    assert KEY_REGEX == r"\bkp_(?:live|test)_[0-9A-Za-z]{38}\b"


def test_a_key_is_found_at_its_line_and_column_masked() -> None:
    key = mint_key("test")
    found = find_keys(f"first line\n  token: {key}  # oops\n")
    assert len(found) == 1
    assert (found[0].line, found[0].column) == (2, 10)
    assert found[0].masked == mask_key(key)
    assert found[0].environment == "test"


def test_the_full_key_is_left_out_of_the_repr() -> None:
    key = mint_key()
    (found,) = find_keys(key)
    assert key not in repr(found)
    assert found.key == key


def test_a_right_shape_with_a_wrong_checksum_is_not_a_key() -> None:
    key = mint_key()
    wrong = key[:-1] + ("0" if key[-1] != "0" else "1")
    assert KEY_PATTERN.search(wrong)
    assert find_keys(f"API_KEY={wrong}") == []


@pytest.mark.parametrize(
    "text",
    [
        "kp_live_" + "a" * TAIL_LENGTH,
        "kp_live_" + "a" * (TAIL_LENGTH - 1),
        "kp_prod_" + "a" * TAIL_LENGTH,
        "",
        "kp_",
    ],
)
def test_look_alikes_are_not_keys(text: str) -> None:
    assert find_keys(text) == []


def test_several_keys_on_a_line_are_each_found_in_order() -> None:
    first, second = mint_key("live"), mint_key("test")
    found = find_keys(f"{first},{second}")
    assert [f.key for f in found] == [first, second]
    assert [f.column for f in found] == [1, KEY_LENGTH + 2]


@given(
    environment=st.sampled_from(ENVIRONMENTS),
    tail=st.text(alphabet=BASE62, min_size=TAIL_LENGTH, max_size=TAIL_LENGTH),
)
def test_random_strings_of_the_right_shape_do_not_validate(environment: str, tail: str) -> None:
    # One in 62**6 (5.7e10) would: hypothesis cannot find one by search, only by luck.
    assert find_keys(f"kp_{environment}_{tail}") == []


@given(position=st.integers(min_value=RANDOM_START, max_value=KEY_LENGTH - 1), data=st.data())
def test_any_one_character_changed_in_a_key_is_not_a_key(
    position: int, data: st.DataObject
) -> None:
    # CRC32 detects every error within 32 bits, and six base62 digits hold every CRC32.
    key = mint_key()
    other = data.draw(st.sampled_from(BASE62.replace(key[position], "")))
    assert find_keys(key[:position] + other + key[position + 1 :]) == []


separators = st.sampled_from([" ", "\n", "\t", "=", '"', "'", ":", ",", "(", "/"])


@given(before=st.text(), after=st.text(), left=separators, right=separators)
def test_every_minted_key_is_found_in_any_surrounding_text(
    before: str, after: str, left: str, right: str
) -> None:
    key = mint_key()
    prefix = before + left
    found = [f for f in find_keys(prefix + key + right + after) if f.key == key]
    last_line = prefix.split("\n")[-1]
    assert [(f.line, f.column) for f in found] == [(prefix.count("\n") + 1, len(last_line) + 1)]


def test_the_regex_is_plain_enough_for_re2_scanners() -> None:
    # gitleaks (Go RE2) has no look-around or backreferences; \b is ASCII there as here.
    assert not re.search(r"\(\?[<=!]|\\[1-9]", KEY_REGEX)
