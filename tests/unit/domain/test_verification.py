"""What the verification hot path knows about a key: its code at a given time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyplane.domain.models import StoredStatus
from keyplane.domain.scopes import ScopeSet
from keyplane.domain.verification import CODES, CachedKey, Verdict

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


def cached(
    *, stored_status: StoredStatus = "active", expires_at: datetime | None = None
) -> CachedKey:
    return CachedKey(
        key_id="key_1",
        org_id="org_1",
        app_id=None,
        profile_id=None,
        stored_status=stored_status,
        expires_at=expires_at,
        scopes=ScopeSet.full(),
        profile=None,
        metadata={},
        environment="live",
    )


@pytest.mark.parametrize(
    ("stored_status", "expires_at", "code"),
    [
        ("active", None, "VALID"),
        ("active", NOW + SECOND, "VALID"),
        ("inactive", None, "DISABLED"),
        ("inactive", NOW + SECOND, "DISABLED"),
        ("active", NOW, "EXPIRED"),
        ("active", NOW - SECOND, "EXPIRED"),
        # Expiry is reported before a disabled status, as ApiKey.status() does.
        ("inactive", NOW, "EXPIRED"),
        ("inactive", NOW - SECOND, "EXPIRED"),
    ],
)
def test_code_at(stored_status: StoredStatus, expires_at: datetime | None, code: str) -> None:
    assert cached(stored_status=stored_status, expires_at=expires_at).code_at(NOW) == code


@given(
    stored_status=st.sampled_from(["active", "inactive"]),
    offset=st.one_of(
        st.none(),
        st.timedeltas(min_value=timedelta(days=-3650), max_value=timedelta(days=3650)),
    ),
)
def test_code_at_agrees_with_the_key_status(
    stored_status: StoredStatus, offset: timedelta | None
) -> None:
    expires_at = None if offset is None else NOW + offset
    entry = cached(stored_status=stored_status, expires_at=expires_at)

    expected = {"active": "VALID", "inactive": "DISABLED", "expired": "EXPIRED"}[
        "expired" if expires_at is not None and expires_at <= NOW else stored_status
    ]
    assert entry.code_at(NOW) == expected
    assert entry.code_at(NOW) in CODES


@pytest.mark.parametrize("code", CODES)
def test_a_verdict_is_valid_only_for_valid(code: str) -> None:
    assert Verdict(code).valid is (code == "VALID")  # type: ignore[arg-type]
