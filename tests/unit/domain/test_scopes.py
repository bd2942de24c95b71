"""The scope grammar and the ScopeSet algebra."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.scopes import FULL_ACCESS, InvalidScope, ScopeSet, parse_scope

RESOURCES = ("models", "tools", "api_keys")
ACTIONS = ("read", "write", "delete", "deploy")

CONCRETE_SCOPES = tuple(f"{r}:{a}" for r in RESOURCES for a in ACTIONS)
RESOURCE_WILDCARDS = tuple(f"{r}:*" for r in RESOURCES)
EVERY_SCOPE = (*CONCRETE_SCOPES, *RESOURCE_WILDCARDS, FULL_ACCESS)

concrete_scopes = st.sampled_from(CONCRETE_SCOPES)
any_scopes = st.one_of(
    concrete_scopes,
    st.sampled_from(RESOURCE_WILDCARDS),
    st.just(FULL_ACCESS),
)
# Full access is rare in real sets and swallows every other member: keep it uncommon so that
# most examples exercise the per-resource rules.
scope_lists = st.lists(
    st.one_of(concrete_scopes, concrete_scopes, st.sampled_from(RESOURCE_WILDCARDS), any_scopes),
    max_size=8,
)
scope_sets = scope_lists.map(ScopeSet.of)


def naive_covers(held: set[str], scope: str) -> bool:
    """The documented meaning of *covers*, written independently of ScopeSet."""
    if FULL_ACCESS in held:
        return True
    if scope == FULL_ACCESS:
        return False
    resource, _, _ = scope.partition(":")
    return scope in held or f"{resource}:*" in held


# --- Grammar ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "parsed"),
    [
        ("models:read", ("models", "read")),
        ("models:*", ("models", "*")),
        ("api_keys:write", ("api_keys", "write")),
        ("keys:verify", ("keys", "verify")),
        ("tools:deploy-canary", ("tools", "deploy-canary")),
        ("r2:a_1", ("r2", "a_1")),
        ("*", None),
    ],
)
def test_parse_scope_splits_resource_and_action(scope: str, parsed: tuple[str, str] | None) -> None:
    assert parse_scope(scope) == parsed


MALFORMED = [
    pytest.param("", id="empty"),
    pytest.param("models", id="no-colon"),
    pytest.param("models:", id="no-action"),
    pytest.param(":read", id="no-resource"),
    pytest.param("Models:read", id="capital-resource"),
    pytest.param("models:Read", id="capital-action"),
    pytest.param("models:read:x", id="two-colons"),
    pytest.param("mod els:read", id="space-in-resource"),
    pytest.param("models:re ad", id="space-in-action"),
    pytest.param("*:read", id="wildcard-resource"),
    pytest.param("*:*", id="wildcard-both"),
    pytest.param("**", id="double-star"),
    pytest.param(" *", id="padded-star"),
    pytest.param("models:read ", id="trailing-space"),
    pytest.param("1models:read", id="resource-starts-with-digit"),
    pytest.param("models:-read", id="action-starts-with-dash"),
    pytest.param("mo-dels:read", id="dash-in-resource"),
    pytest.param("models:r*", id="partial-wildcard"),
    pytest.param("m" * 41 + ":read", id="resource-too-long"),
    pytest.param("models:" + "r" * 41, id="action-too-long"),
    pytest.param("models:read\n", id="trailing-newline"),
]


@pytest.mark.parametrize("scope", MALFORMED)
def test_parse_scope_rejects_malformed_strings(scope: str) -> None:
    with pytest.raises(InvalidScope) as raised:
        parse_scope(scope)

    assert raised.value.scope == scope
    assert "expected 'resource:action', 'resource:*' or '*'" in str(raised.value)


@pytest.mark.parametrize("scope", MALFORMED)
def test_scope_set_of_raises_invalid_scope_on_malformed_strings(scope: str) -> None:
    with pytest.raises(InvalidScope):
        ScopeSet.of(["models:read", scope])


def test_invalid_scope_is_a_value_error() -> None:
    assert issubclass(InvalidScope, ValueError)


def test_names_of_forty_characters_are_accepted() -> None:
    assert parse_scope("m" * 40 + ":" + "r" * 40) == ("m" * 40, "r" * 40)


# --- Normalisation ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given_scopes", "normalised"),
    [
        ([], set()),
        (["models:read", "models:read"], {"models:read"}),
        (["models:read", "models:*"], {"models:*"}),
        (["models:read", "models:*", "tools:read"], {"models:*", "tools:read"}),
        (["models:read", "*"], {"*"}),
        (["models:*", "tools:*", "*"], {"*"}),
        (["*"], {"*"}),
        (["models:read", "models:write"], {"models:read", "models:write"}),
    ],
)
def test_scope_set_of_normalises(given_scopes: list[str], normalised: set[str]) -> None:
    assert ScopeSet.of(given_scopes).scopes == frozenset(normalised)


@given(scopes=scope_lists)
def test_nothing_in_a_set_is_covered_by_another_member(scopes: list[str]) -> None:
    members = ScopeSet.of(scopes).scopes

    for member in members:
        others = ScopeSet(members - {member})
        assert not others.covers(member), (member, members)


@given(scopes=scope_lists)
def test_full_access_collapses_the_set_to_star(scopes: list[str]) -> None:
    assert ScopeSet.of([*scopes, FULL_ACCESS]).scopes == frozenset({FULL_ACCESS})


@given(scopes=scope_lists)
def test_normalisation_does_not_change_what_a_set_covers(scopes: list[str]) -> None:
    normalised = ScopeSet.of(scopes)

    for scope in EVERY_SCOPE:
        assert normalised.covers(scope) == naive_covers(set(scopes), scope), scope


@given(scopes=scope_lists)
def test_normalisation_is_idempotent(scopes: list[str]) -> None:
    once = ScopeSet.of(scopes)

    assert ScopeSet.of(once.scopes) == once


def test_sorted_lists_the_scopes_in_order() -> None:
    assert ScopeSet.of(["tools:read", "models:write", "api_keys:*"]).sorted() == [
        "api_keys:*",
        "models:write",
        "tools:read",
    ]


# --- covers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("held", "scope", "covered"),
    [
        (["models:read"], "models:read", True),
        (["models:read"], "models:write", False),
        (["models:read"], "tools:read", False),
        (["models:*"], "models:read", True),
        (["models:*"], "models:deploy", True),
        (["models:*"], "models:*", True),
        (["models:*"], "tools:read", False),
        (["models:*"], "*", False),
        (["models:read"], "models:*", False),
        (["models:read", "models:write", "models:delete"], "models:*", False),
        (["models:*", "tools:*", "api_keys:*"], "*", False),
        (["*"], "*", True),
        (["*"], "models:*", True),
        (["*"], "anything:at_all", True),
        ([], "models:read", False),
        ([], "*", False),
    ],
)
def test_covers(held: list[str], scope: str, covered: bool) -> None:
    assert ScopeSet.of(held).covers(scope) is covered


def test_every_action_listed_does_not_cover_the_resource_wildcard() -> None:
    # models:* also grants actions added tomorrow, which the list cannot.
    actions = ScopeSet.of(["models:read", "models:write", "models:delete"])

    assert not actions.covers("models:*")
    assert not ScopeSet.of(["models:*"]).issubset(actions)


@given(scope=any_scopes)
def test_full_access_covers_everything(scope: str) -> None:
    full = ScopeSet.full()

    assert full.is_full_access
    assert full.covers(scope)
    assert full == ScopeSet.of([FULL_ACCESS])


@given(a=scope_sets)
def test_full_access_is_a_superset_of_every_set(a: ScopeSet) -> None:
    assert a.issubset(ScopeSet.full())


@given(scope=any_scopes)
def test_the_empty_set_covers_nothing(scope: str) -> None:
    empty = ScopeSet.of([])

    assert not empty.is_full_access
    assert not empty.covers(scope)


@given(a=scope_sets)
def test_is_full_access_only_for_star(a: ScopeSet) -> None:
    assert a.is_full_access == a.covers(FULL_ACCESS) == (a.scopes == frozenset({FULL_ACCESS}))


@given(a=scope_sets, wanted=st.lists(any_scopes, max_size=6))
def test_covers_all_is_covers_for_each(a: ScopeSet, wanted: list[str]) -> None:
    assert a.covers_all(wanted) == all(a.covers(s) for s in wanted)


# --- missing ---------------------------------------------------------------------------------


def test_missing_lists_exactly_the_uncovered_scopes_in_order() -> None:
    held = ScopeSet.of(["models:*", "tools:read"])

    assert held.missing(["tools:write", "models:deploy", "tools:read", "api_keys:read"]) == [
        "tools:write",
        "api_keys:read",
    ]


def test_missing_is_empty_when_everything_is_covered() -> None:
    assert ScopeSet.full().missing(["models:read", "*"]) == []
    assert ScopeSet.of(["models:read"]).missing([]) == []


@given(a=scope_sets, wanted=st.lists(any_scopes, max_size=6))
def test_missing_is_exactly_the_uncovered_ones(a: ScopeSet, wanted: list[str]) -> None:
    assert a.missing(wanted) == [s for s in wanted if not a.covers(s)]
    assert (a.missing(wanted) == []) == a.covers_all(wanted)


# --- issubset --------------------------------------------------------------------------------


@given(a=scope_sets, b=scope_sets)
def test_issubset_iff_every_scope_of_a_is_covered_by_b(a: ScopeSet, b: ScopeSet) -> None:
    assert a.issubset(b) == all(b.covers(s) for s in a.scopes)


@given(a=scope_sets, b=scope_sets)
def test_issubset_means_b_covers_whatever_a_covers(a: ScopeSet, b: ScopeSet) -> None:
    # No escalation: if a is a subset of b, nothing a grants is withheld by b.
    if a.issubset(b):
        for scope in EVERY_SCOPE:
            assert not a.covers(scope) or b.covers(scope), scope


@given(a=scope_sets)
def test_a_set_is_a_subset_of_itself(a: ScopeSet) -> None:
    assert a.issubset(a)


@given(a=scope_sets, b=scope_sets, c=scope_sets)
def test_issubset_is_transitive(a: ScopeSet, b: ScopeSet, c: ScopeSet) -> None:
    if a.issubset(b) and b.issubset(c):
        assert a.issubset(c)


@given(a=scope_sets)
def test_the_empty_set_is_a_subset_of_every_set(a: ScopeSet) -> None:
    assert ScopeSet.of([]).issubset(a)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (["models:read"], ["models:*"], True),
        (["models:*"], ["models:read"], False),
        (["models:*"], ["models:read", "models:write", "models:delete"], False),
        (["models:read", "tools:read"], ["models:*"], False),
        (["*"], ["models:*", "tools:*", "api_keys:*"], False),
        (["models:*", "tools:*"], ["*"], True),
    ],
)
def test_issubset(a: list[str], b: list[str], expected: bool) -> None:
    assert ScopeSet.of(a).issubset(ScopeSet.of(b)) is expected


# --- intersect -------------------------------------------------------------------------------


@given(a=scope_sets, b=scope_sets, scope=concrete_scopes)
def test_intersection_covers_a_concrete_scope_iff_both_do(
    a: ScopeSet, b: ScopeSet, scope: str
) -> None:
    assert a.intersect(b).covers(scope) == (a.covers(scope) and b.covers(scope))


@given(a=scope_sets, b=scope_sets, scope=any_scopes)
def test_intersection_covers_a_wildcard_scope_iff_both_do(
    a: ScopeSet, b: ScopeSet, scope: str
) -> None:
    assert a.intersect(b).covers(scope) == (a.covers(scope) and b.covers(scope))


@given(a=scope_sets, b=scope_sets)
def test_intersection_is_commutative_in_what_it_covers(a: ScopeSet, b: ScopeSet) -> None:
    ab, ba = a.intersect(b), b.intersect(a)

    for scope in EVERY_SCOPE:
        assert ab.covers(scope) == ba.covers(scope), scope


@given(a=scope_sets, b=scope_sets)
def test_intersection_is_a_subset_of_both(a: ScopeSet, b: ScopeSet) -> None:
    both = a.intersect(b)

    assert both.issubset(a)
    assert both.issubset(b)


@given(a=scope_sets, b=scope_sets)
def test_intersection_is_normalised(a: ScopeSet, b: ScopeSet) -> None:
    both = a.intersect(b)

    assert ScopeSet.of(both.scopes) == both


@given(a=scope_sets)
def test_intersecting_with_itself_or_full_access_changes_nothing(a: ScopeSet) -> None:
    assert a.intersect(a) == a
    assert a.intersect(ScopeSet.full()) == a
    assert ScopeSet.full().intersect(a) == a


@given(a=scope_sets)
def test_intersecting_with_the_empty_set_is_empty(a: ScopeSet) -> None:
    assert a.intersect(ScopeSet.of([])).scopes == frozenset()


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (["models:*"], ["models:read", "tools:read"], {"models:read"}),
        (["models:*", "tools:write"], ["models:*"], {"models:*"}),
        (["*"], ["models:read"], {"models:read"}),
        (["models:read"], ["tools:read"], set()),
        (["models:read", "models:write"], ["models:write", "models:delete"], {"models:write"}),
    ],
)
def test_intersect(a: list[str], b: list[str], expected: set[str]) -> None:
    assert ScopeSet.of(a).intersect(ScopeSet.of(b)).scopes == frozenset(expected)
