"""The managed records: a key's derived status and its effective scopes."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.models import ApiKey, App, StoredStatus, effective_scopes
from keyplane.domain.scopes import ScopeSet

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)

RESOURCES = ("models", "tools")
ACTIONS = ("read", "write", "deploy")
SCOPES = (
    *(f"{r}:{a}" for r in RESOURCES for a in ACTIONS),
    *(f"{r}:*" for r in RESOURCES),
    "*",
)
scope_tuples = st.lists(st.sampled_from(SCOPES), max_size=5).map(tuple)


def make_key(
    *, stored_status: StoredStatus = "active", expires_at: datetime | None = None
) -> ApiKey:
    return ApiKey(
        id="key_1",
        org_id="org_1",
        name="ci",
        description="",
        digest="0" * 64,
        digest_version=1,
        masked_key="kp_live_…abcd",
        environment="live",
        scopes=(),
        app_id=None,
        profile_id=None,
        metadata={},
        stored_status=stored_status,
        created_at=NOW - timedelta(days=1),
        created_by="usr_1",
        updated_at=NOW - timedelta(days=1),
        expires_at=expires_at,
    )


def make_app(scopes: tuple[str, ...]) -> App:
    return App(
        id="app_1",
        org_id="org_1",
        name="billing",
        description="",
        scopes=scopes,
        created_by="usr_1",
        created_at=NOW,
        updated_at=NOW,
    )


# --- ApiKey.status ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stored_status", "expires_at", "status"),
    [
        ("active", None, "active"),
        ("inactive", None, "inactive"),
        ("active", NOW + SECOND, "active"),
        ("inactive", NOW + SECOND, "inactive"),
        ("active", NOW, "expired"),
        ("inactive", NOW, "expired"),
        ("active", NOW - SECOND, "expired"),
        ("inactive", NOW - timedelta(days=365), "expired"),
    ],
)
def test_status_is_expired_once_expires_at_has_passed_else_stored(
    stored_status: StoredStatus, expires_at: datetime | None, status: str
) -> None:
    key = make_key(stored_status=stored_status, expires_at=expires_at)

    assert key.status(NOW) == status


@given(
    stored_status=st.sampled_from(["active", "inactive"]),
    offset=st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650)),
)
def test_status_depends_only_on_whether_expiry_has_come(
    stored_status: StoredStatus, offset: timedelta
) -> None:
    key = make_key(stored_status=stored_status, expires_at=NOW + offset)

    assert key.status(NOW) == ("expired" if offset <= timedelta(0) else stored_status)


def test_a_key_without_expiry_never_expires() -> None:
    key = make_key(expires_at=None)

    assert key.status(datetime.max.replace(tzinfo=UTC)) == "active"


def test_api_key_repr_never_shows_the_digest() -> None:
    key = replace(make_key(), digest="secretdigest" * 4)

    assert "secretdigest" not in repr(key)


# --- App.scope_set ---------------------------------------------------------------------------


def test_app_without_scopes_grants_full_access() -> None:
    assert make_app(()).scope_set == ScopeSet.full()


def test_app_scope_set_is_its_normalised_scopes() -> None:
    assert make_app(("models:read", "models:*")).scope_set == ScopeSet.of(["models:*"])


# --- effective_scopes ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("own", "app_scopes", "effective"),
    [
        pytest.param((), None, {"*"}, id="no-app-no-own-is-full-access"),
        pytest.param(("models:read",), None, {"models:read"}, id="no-app-is-own"),
        pytest.param(("*",), None, {"*"}, id="no-app-own-star"),
        pytest.param((), ("tools:*",), {"tools:*"}, id="app-no-own-is-app"),
        pytest.param((), (), {"*"}, id="app-with-no-scopes-is-full-access"),
        pytest.param(
            ("models:read", "tools:write"),
            ("models:*",),
            {"models:read"},
            id="app-and-own-is-intersection",
        ),
        pytest.param(("models:read",), (), {"models:read"}, id="unscoped-app-and-own-is-own"),
        pytest.param(("models:*",), ("models:read",), {"models:read"}, id="own-cannot-widen"),
        pytest.param(("tools:read",), ("models:read",), set(), id="disjoint-is-nothing"),
    ],
)
def test_effective_scopes(
    own: tuple[str, ...], app_scopes: tuple[str, ...] | None, effective: set[str]
) -> None:
    app = None if app_scopes is None else make_app(app_scopes)

    assert effective_scopes(own, app).scopes == frozenset(effective)


@given(own=scope_tuples)
def test_without_an_app_a_key_has_its_own_scopes_or_full_access(own: tuple[str, ...]) -> None:
    expected = ScopeSet.of(own) if own else ScopeSet.full()

    assert effective_scopes(own, None) == expected


@given(app_scopes=scope_tuples)
def test_a_key_without_own_scopes_has_its_apps(app_scopes: tuple[str, ...]) -> None:
    app = make_app(app_scopes)

    assert effective_scopes((), app) == app.scope_set


@given(own=scope_tuples.filter(bool), app_scopes=scope_tuples, scope=st.sampled_from(SCOPES))
def test_a_key_with_an_app_is_granted_what_both_grant(
    own: tuple[str, ...], app_scopes: tuple[str, ...], scope: str
) -> None:
    app = make_app(app_scopes)

    granted = effective_scopes(own, app).covers(scope)

    assert granted == (ScopeSet.of(own).covers(scope) and app.scope_set.covers(scope))


@given(own=scope_tuples, app_scopes=scope_tuples)
def test_a_key_never_exceeds_its_app(own: tuple[str, ...], app_scopes: tuple[str, ...]) -> None:
    app = make_app(app_scopes)

    assert effective_scopes(own, app).issubset(app.scope_set)
