"""The permission catalogue: built-in and custom resources, and scope-list validation."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.catalogue import (
    BUILTIN_RESOURCES,
    DEFAULT_ACTIONS,
    Catalogue,
    Resource,
)
from keyplane.domain.errors import FieldError, InvalidInput
from keyplane.domain.limits import SCOPES_MAX
from keyplane.domain.scopes import ScopeSet

TOOLS = Resource(
    name="tools",
    title="Tools",
    description="Things an agent can call.",
    actions=("read", "deploy"),
    builtin=False,
)


@pytest.fixture
def catalogue() -> Catalogue:
    return Catalogue([TOOLS])


def errors_of(catalogue: Catalogue, scopes: list[str]) -> list[FieldError]:
    with pytest.raises(InvalidInput) as raised:
        catalogue.validate("scopes", scopes)
    return raised.value.errors


# --- Built-ins -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "actions"),
    [
        ("api_keys", DEFAULT_ACTIONS),
        ("apps", DEFAULT_ACTIONS),
        ("resources", DEFAULT_ACTIONS),
        ("profiles", DEFAULT_ACTIONS),
        ("users", DEFAULT_ACTIONS),
        ("org", ("read", "write", "own")),
        ("audit", ("read",)),
        ("analytics", ("read",)),
        ("webhooks", DEFAULT_ACTIONS),
        ("keys", ("verify",)),
    ],
)
def test_builtin_resource_is_present_with_its_actions(
    name: str, actions: tuple[str, ...], catalogue: Catalogue
) -> None:
    resource = catalogue.get(name)

    assert resource is not None
    assert resource.builtin
    assert resource.actions == actions


def test_the_builtins_are_exactly_the_documented_ten() -> None:
    assert set(BUILTIN_RESOURCES) == {
        "api_keys",
        "apps",
        "resources",
        "profiles",
        "users",
        "org",
        "audit",
        "analytics",
        "webhooks",
        "keys",
    }


def test_an_empty_catalogue_holds_the_builtins_only() -> None:
    assert [r.name for r in Catalogue([]).all()] == sorted(BUILTIN_RESOURCES)


def test_get_answers_none_for_an_unknown_resource(catalogue: Catalogue) -> None:
    assert catalogue.get("nope") is None


def test_all_lists_builtins_first_then_custom_resources_by_name() -> None:
    zebra = Resource("zebra", "Z", "", ("read",), builtin=False)
    alpha = Resource("alpha", "A", "", ("read",), builtin=False)

    names = [r.name for r in Catalogue([zebra, alpha]).all()]

    assert names == [*sorted(BUILTIN_RESOURCES), "alpha", "zebra"]


def test_custom_resources_do_not_leak_between_catalogues() -> None:
    Catalogue([TOOLS])

    assert Catalogue([]).get("tools") is None


# --- Validation: accepted --------------------------------------------------------------------


@pytest.mark.parametrize(
    "scopes",
    [
        [],
        ["*"],
        ["api_keys:read", "api_keys:write", "api_keys:delete"],
        ["keys:verify"],
        ["org:write", "audit:read", "analytics:read"],
        ["api_keys:*"],
        ["tools:deploy"],
        ["tools:read", "tools:deploy"],
        ["tools:*"],
        ["tools:*", "keys:verify", "*"],
    ],
)
def test_validate_accepts_known_scopes(scopes: list[str], catalogue: Catalogue) -> None:
    assert catalogue.validate("scopes", scopes) == ScopeSet.of(scopes)


def test_validate_returns_a_normalised_scope_set(catalogue: Catalogue) -> None:
    result = catalogue.validate("scopes", ["tools:read", "tools:*", "keys:verify"])

    assert result.scopes == frozenset({"tools:*", "keys:verify"})


@given(
    scopes=st.lists(
        st.sampled_from(
            [
                f"{r.name}:{a}"
                for r in (*BUILTIN_RESOURCES.values(), TOOLS)
                for a in (*r.actions, "*")
            ]
        ),
        max_size=SCOPES_MAX,
    )
)
def test_validate_accepts_any_list_of_catalogued_scopes(scopes: list[str]) -> None:
    assert Catalogue([TOOLS]).validate("scopes", scopes) == ScopeSet.of(scopes)


def test_validate_accepts_exactly_scopes_max_scopes(catalogue: Catalogue) -> None:
    scopes = ["keys:verify"] * SCOPES_MAX

    assert catalogue.validate("scopes", scopes) == ScopeSet.of(["keys:verify"])


# --- Validation: rejected --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "reason"),
    [
        ("nope:read", "unknown resource 'nope' in 'nope:read'"),
        ("nope:*", "unknown resource 'nope' in 'nope:*'"),
        ("keys:read", "unknown action 'read' on 'keys' (known: verify)"),
        ("audit:write", "unknown action 'write' on 'audit' (known: read)"),
        ("api_keys:verify", "unknown action 'verify' on 'api_keys' (known: read, write, delete)"),
        ("tools:delete", "unknown action 'delete' on 'tools' (known: read, deploy)"),
        ("Models:read", "is not a scope"),
        ("*:read", "is not a scope"),
        ("models", "is not a scope"),
        ("", "is not a scope"),
    ],
)
def test_validate_names_the_bad_entry_and_why(
    scope: str, reason: str, catalogue: Catalogue
) -> None:
    errors = errors_of(catalogue, ["keys:verify", scope])

    assert len(errors) == 1
    assert errors[0].field == "scopes[1]"
    assert reason in errors[0].message


def test_validate_reports_every_bad_entry_with_its_index(catalogue: Catalogue) -> None:
    errors = errors_of(
        catalogue, ["nope:read", "keys:verify", "keys:read", "models:", "tools:deploy"]
    )

    assert [e.field for e in errors] == ["scopes[0]", "scopes[2]", "scopes[3]"]
    assert "unknown resource 'nope'" in errors[0].message
    assert "unknown action 'read' on 'keys'" in errors[1].message
    assert "'models:' is not a scope" in errors[2].message


def test_validate_uses_the_field_name_it_is_given(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidInput) as raised:
        catalogue.validate("app.scopes", ["nope:read"])

    assert raised.value.errors[0].field == "app.scopes[0]"
    assert str(raised.value).startswith("app.scopes[0]: unknown resource")


def test_validate_rejects_more_than_scopes_max_scopes(catalogue: Catalogue) -> None:
    with pytest.raises(InvalidInput) as raised:
        catalogue.validate("scopes", ["keys:verify"] * (SCOPES_MAX + 1))

    assert raised.value.errors == [FieldError("scopes", f"at most {SCOPES_MAX} scopes")]


def test_a_custom_resource_unknown_to_another_catalogue_is_rejected_there() -> None:
    errors = errors_of(Catalogue([]), ["tools:deploy"])

    assert errors == [FieldError("scopes[0]", "unknown resource 'tools' in 'tools:deploy'")]
