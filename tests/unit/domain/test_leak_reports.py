"""What a leak report keeps: checksum-valid keys, each once; a source without control
characters or keys, within its length."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.leaks import SOURCE_MAX, clean_source, reported_keys
from keyplane.domain.tokens import mask_key, mint_key, parse_key


def test_only_checksum_valid_keys_are_kept_each_once_in_order() -> None:
    a, b = mint_key(), mint_key("test")
    broken = a[:-1] + ("A" if a[-1] != "A" else "B")
    assert reported_keys([a, "hello", broken, f"  {b}\n", a, "", "kp_live_" + "x" * 38]) == [a, b]


@given(st.lists(st.text(max_size=60), max_size=20))
def test_random_strings_are_never_kept(candidates: list[str]) -> None:
    assert all(parse_key(key) for key in reported_keys(candidates))


def test_a_source_is_cleaned_masked_and_cut() -> None:
    key = mint_key()
    assert clean_source(None) is None
    assert clean_source("  \n ") is None
    assert clean_source("line\none\x00two") == "line one two"
    assert clean_source(f"see {key} here") == f"see {mask_key(key)} here"
    assert len(clean_source("x" * (SOURCE_MAX + 50)) or "") == SOURCE_MAX
